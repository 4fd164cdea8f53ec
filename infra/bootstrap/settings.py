"""Validated config of the bootstrap program (``infra/bootstrap/Pulumi.<stack>.yaml``).

Same style as :mod:`infra.settings`: pydantic models with camelCase keys, unknown keys
rejected, and every problem reported in one :class:`infra.config.ConfigError`, one line each naming
the file and the key — ``infra/bootstrap/Pulumi.bootstrap.yaml:
print-platform-bootstrap:github.repository: ...`` — before any resource is registered.

The platform stacks the bootstrap serves are named under ``stacks``; their project id
and whether IAP is on are read from the platform's own stack files
(:func:`infra.settings.load_stack_settings`), so no fact is typed twice.

Keys (docs/infra.md "Bootstrap config"):

- ``gcp:project``: the seed project (state bucket, KMS keys, workload identity pool, CI
  service accounts); ``gcp:region``: where the bucket and key ring live.
- ``print-platform-bootstrap:github.repository``: ``owner/name`` the CI identity is pinned to.
- ``print-platform-bootstrap:stacks``: ``{<platform stack>: {deployRefs: [...]}}``.
- ``print-platform-bootstrap:state.noncurrentVersionRetentionDays``,
  ``print-platform-bootstrap:kms.rotationPeriodDays``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from infra.config import ConfigError, ProjectId, Region, problems
from infra.config import ConfigModel as _Model
from infra.config import STACK_PATTERN as _STACK
from infra.settings import REPO_ROOT, StackSettings, load_stack_settings, read_config_mapping

#: The bootstrap program's Pulumi project name (``infra/bootstrap/Pulumi.yaml``); also its config namespace.
PROJECT = "print-platform-bootstrap"
#: Its directory, relative to the repository root.
DIRECTORY = "infra/bootstrap"
#: The one stack of the bootstrap project (``make preview STACK=bootstrap``).
STACK = "bootstrap"

# GitHub: owner 1-39 chars (letters, digits, single hyphens), repository 1-100 chars
# (letters, digits, '.', '_', '-'); https://docs.github.com/en/repositories/creating-and-managing-repositories
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/[A-Za-z0-9._-]{1,100}$")
# A deploy ref: a branch or tag ref, optionally ending in one '*' (prefix match).
_REF = re.compile(r"^refs/(heads|tags)/[A-Za-z0-9._/-]+\*?$")


class GithubConfig(_Model):
    """``print-platform-bootstrap:github``.

    Attributes:
        repository: ``owner/name``; the workload identity provider admits tokens of this
            repository only (``assertion.repository``). No wildcards.
    """

    repository: str = Field(description="`owner/name`, no wildcard")

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if "*" in v or "?" in v:
            raise ValueError(f"{v!r}: wildcards are not allowed, pin exactly one repository 'owner/name'")
        if not _REPOSITORY.match(v):
            raise ValueError(f"{v!r} is not a GitHub repository 'owner/name'")
        return v


class StackCiConfig(_Model):
    """One platform stack under ``print-platform-bootstrap:stacks``.

    Attributes:
        deploy_refs: git refs the deploy workflow may deploy this stack from, in the
            GitHub environment of the same name (``refs/heads/main``; a trailing ``*``
            matches a prefix: ``refs/tags/v*``). At least one.
    """

    deploy_refs: list[str] = Field(min_length=1, description="`refs/heads/<branch>` or `refs/tags/<prefix>*`")

    @field_validator("deploy_refs")
    @classmethod
    def _refs(cls, v: list[str]) -> list[str]:
        for ref in v:
            if not _REF.match(ref) or ref.count("*") > 1:
                raise ValueError(
                    f"{ref!r} is not a branch or tag ref ('refs/heads/<branch>' or 'refs/tags/<prefix>*')"
                )
        return v


class StateConfig(_Model):
    """``print-platform-bootstrap:state``: ``noncurrentVersionRetentionDays`` (1-3650, default 90):
    how long an overwritten state file version stays restorable."""

    noncurrent_version_retention_days: int = Field(default=90, ge=1, le=3650)


class KmsConfig(_Model):
    """``print-platform-bootstrap:kms``: ``rotationPeriodDays`` (1-365, default 90): a new key
    version becomes primary this often (old versions still decrypt)."""

    rotation_period_days: int = Field(default=90, ge=1, le=365)


class BootstrapConfig(BaseModel):
    """The bootstrap stack file's ``config:`` mapping, keys exactly as in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: ProjectId = Field(alias="gcp:project", description="the seed project; not a stack's project")
    region: Region = Field(alias="gcp:region", description="a known region (state bucket and key ring)")
    github: GithubConfig = Field(alias=f"{PROJECT}:github")
    stacks: dict[str, StackCiConfig] = Field(
        alias=f"{PROJECT}:stacks", min_length=1,
        description="`{<platform stack>: {deployRefs: [...]}}`; each needs a valid `Pulumi.<stack>.yaml`")
    state: StateConfig = Field(default=StateConfig(), alias=f"{PROJECT}:state")
    kms: KmsConfig = Field(default=KmsConfig(), alias=f"{PROJECT}:kms")

    @field_validator("stacks")
    @classmethod
    def _stack_names(cls, v: dict[str, StackCiConfig]) -> dict[str, StackCiConfig]:
        for name in v:
            if not _STACK.match(name) or name == STACK:
                raise ValueError(f"{name!r} is not a platform stack name (2-12 lower-case letters/digits, not {STACK!r})")
        return v


class BootstrapNames(BaseModel):
    """Physical names of the bootstrap's resources (one place for each).

    Attributes:
        state_bucket: ``<seed project>-pulumi-state``.
        key_ring: ``print-platform-pulumi``; keys ``<stack>-secrets``.
        pool: workload identity pool id ``github-actions``; provider ``github``.
        deploy_accounts / preview_accounts: ``{stack: <stack>-deploy / <stack>-preview}``
            (service account ids in the seed project).
        preview_role: id of the custom role the preview accounts get on each stack project.
    """

    model_config = ConfigDict(frozen=True)

    state_bucket: str
    key_ring: str
    keys: dict[str, str]
    pool: str
    provider: str
    deploy_accounts: dict[str, str]
    preview_accounts: dict[str, str]
    preview_role: str

    @classmethod
    def derive(cls, project: str, stacks: list[str]) -> "BootstrapNames":
        """The names for seed ``project`` and platform ``stacks``."""
        return cls(
            state_bucket=f"{project}-pulumi-state",
            key_ring="print-platform-pulumi",
            keys={s: f"{s}-secrets" for s in stacks},
            pool="github-actions",
            provider="github",
            deploy_accounts={s: f"{s}-deploy" for s in stacks},
            preview_accounts={s: f"{s}-preview" for s in stacks},
            preview_role="pulumiPreviewReader",
        )


class BootstrapSettings(BaseModel):
    """Everything the bootstrap program needs.

    Attributes:
        stack: bootstrap stack name. project, region: the seed project and its region.
        config: the validated :class:`BootstrapConfig`.
        platform: ``{stack: StackSettings}`` of each platform stack (its project id, IAP flag).
        names: :class:`BootstrapNames`. source: the stack file, as shown in errors.
    """

    model_config = ConfigDict(frozen=True)

    stack: str
    project: str
    region: str
    config: BootstrapConfig
    platform: dict[str, StackSettings]
    names: BootstrapNames
    source: str


def stack_file_name(stack: str) -> str:
    """``infra/bootstrap/Pulumi.<stack>.yaml`` (as shown in messages, relative to the repo root)."""
    return f"{DIRECTORY}/Pulumi.{stack}.yaml"


def read_bootstrap_file(stack: str = STACK, root: Optional[Path] = None) -> tuple[dict[str, Any], list[str]]:
    """The ``config:`` mapping of ``infra/bootstrap/Pulumi.<stack>.yaml`` and its secret keys.

    Raises:
        ConfigError: missing file, invalid YAML, no ``config:`` mapping.
    """
    root = root or REPO_ROOT
    shown = stack_file_name(stack)
    return read_config_mapping(root / shown, shown)


def parse_bootstrap_settings(stack: str, config: Mapping[str, Any], root: Optional[Path] = None) -> BootstrapSettings:
    """Validate a raw bootstrap config mapping (full keys, stack-file value shapes or engine JSON strings).

    Args:
        stack: the bootstrap stack name (names the file in messages).
        config: ``{"gcp:project": ..., "print-platform-bootstrap:github": {...}, ...}``;
            keys of other namespaces than ``gcp:`` and ours are ignored.
        root: repository root holding the platform stack files (default: this checkout).

    Raises:
        ConfigError: ``infra/bootstrap/Pulumi.<stack>.yaml: <key>: <problem>``, or a
            platform stack file's own error when a named stack's file is invalid.
    """
    source = stack_file_name(stack)
    raw = {
        key: _decode(value)
        for key, value in config.items()
        if key in ("gcp:project", "gcp:region") or key.startswith(f"{PROJECT}:")
    }
    try:
        parsed = BootstrapConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(problems(exc, source, BootstrapConfig)) from None
    found: list[str] = []
    platform: dict[str, StackSettings] = {}
    for name in parsed.stacks:
        try:
            platform[name] = load_stack_settings(name, root)
        except ConfigError as exc:
            found += [f"{source}: {PROJECT}:stacks.{name}: the platform stack is invalid: {problem}"
                      for problem in exc.problems]
    owners: dict[str, str] = {}
    for name, stack_settings in platform.items():
        # Why: the seed holds every stack's state and CI identities; a stack's `pulumi
        # destroy` or its deploy account's project roles must never reach it. One project
        # per stack: the CI roles and the custom role are per project.
        if stack_settings.project == parsed.project:
            found.append(f"{source}: gcp:project: {parsed.project!r} is also stack {name}'s project; use a separate seed project")
        if stack_settings.project in owners:
            found.append(
                f"{source}: {PROJECT}:stacks.{name}: project {stack_settings.project!r} is also stack {owners[stack_settings.project]}'s"
            )
        owners[stack_settings.project] = name
    if found:
        raise ConfigError(found)
    return BootstrapSettings(
        stack=stack,
        project=parsed.project,
        region=parsed.region,
        config=parsed,
        platform=platform,
        names=BootstrapNames.derive(parsed.project, list(parsed.stacks)),
        source=source,
    )


def load_bootstrap_settings(stack: str = STACK, root: Optional[Path] = None) -> BootstrapSettings:
    """Read and validate ``<root>/infra/bootstrap/Pulumi.<stack>.yaml`` (raises :class:`ConfigError`)."""
    config, _secret_keys = read_bootstrap_file(stack, root)
    return parse_bootstrap_settings(stack, config, root)


def _decode(value: Any) -> Any:
    """Structured config arrives from the Pulumi engine as a JSON string; decode it."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
