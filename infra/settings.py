"""Typed, validated stack settings: the only reader of ``Pulumi.<stack>.yaml`` and ``environments/<stack>/``.

What is stack-wide lives here: project and region, protection, the derived
:class:`Names`, reading the stack file and reporting its problems. Each concern's
model lives beside its component (``infra.network.NetworkConfig``,
``infra.database.DatabaseConfig``, ...) and is that component's config argument;
:class:`StackConfig` composes them. Three entry points:

- :func:`load_stack_settings` reads the stack file and ``environments/<stack>/alerts.yaml``
  from disk (offline preview, chart renderer, local platform, tests);
- :func:`parse_stack_settings` validates an already-built raw config mapping
  (``{"gcp:project": ..., "print-platform:database": {...}}``) — the Pulumi program
  builds that mapping from ``pulumi.Config`` when it runs under the real engine, so
  ``pulumi config set`` keeps working, and validates it with the same model;
- :func:`read_stack_file` returns that raw mapping from a stack file (``secure:``
  values replaced by :data:`SECRET_PLACEHOLDER`, so an encrypted value never breaks
  offline loading).

Every problem of the stack file and the alert data is collected into one
:class:`ConfigError`, one line each naming the file and the key, e.g.
``Pulumi.prod.yaml: print-platform:database.availability: ...`` (an unknown key with
the closest known one: ``did you mean `backupStartTime`?``), before the program
registers any resource.

Config reference (all keys, types, defaults): docs/infra.md.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The per-concern models live beside their components; this module composes them.
from infra.budget import MAX_CHANNELS as BUDGET_MAX_CHANNELS
from infra.budget import BudgetConfig
from infra.config import ConfigError, ProjectId, Region  # noqa: F401 (ConfigError: re-exported)
from infra.config import STACK_PATTERN as _STACK
from infra.config import problems as _problems
from infra.database import Availability, DatabaseConfig
from infra.gke import GkeConfig
from infra.images import ImagesConfig
from infra.loadbalancer import LoadBalancerConfig
from infra.monitoring import AlertingConfig, AlertsConfig
from infra.network import NetworkConfig
from infra.pubsub import PubSubConfig
from infra.releases import ReconcileConfig, cron_schedule  # noqa: F401 (cron_schedule: re-exported)
from infra.services import RECONCILER, RECONCILER_KSA, SERVICES  # noqa: F401 (re-exported)
from infra.storage import StorageConfig

#: The Pulumi project name (``Pulumi.yaml`` ``name``); also the config namespace.
PROJECT = "print-platform"
#: What an encrypted (``secure:``) stack-file value becomes when read offline.
SECRET_PLACEHOLDER = "[secret]"
#: Repository root (this file is ``<root>/infra/settings.py``).
REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- models


class StackConfig(BaseModel):
    """The whole stack file's ``config:`` mapping, keys exactly as in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project: ProjectId = Field(alias="gcp:project", description="project id: 6–30 chars `[a-z][a-z0-9-]*[a-z0-9]`")
    region: Region = Field(alias="gcp:region", description="a known Google Cloud region")
    protect: bool = Field(alias="print-platform:protect",
                          description="protects cluster, SQL instance and database, bucket; needs a REGIONAL database")
    network: NetworkConfig = Field(alias="print-platform:network")
    gke: GkeConfig = Field(alias="print-platform:gke")
    database: DatabaseConfig = Field(alias="print-platform:database")
    storage: StorageConfig = Field(default=StorageConfig(), alias="print-platform:storage")
    pubsub: PubSubConfig = Field(alias="print-platform:pubsub")
    load_balancer: LoadBalancerConfig = Field(alias="print-platform:loadBalancer")
    alerting: AlertingConfig = Field(alias="print-platform:alerting")
    images: ImagesConfig = Field(default=ImagesConfig(), alias="print-platform:images")
    budget: Optional[BudgetConfig] = Field(default=None, alias="print-platform:budget")
    reconcile: ReconcileConfig = Field(default=ReconcileConfig(), alias="print-platform:reconcile")


# --------------------------------------------------------------------------- derived


class Names(BaseModel):
    """Physical names derived from the project and stack (one place for each).

    Attributes:
        prefix: ``print-platform-<stack>``, prefix of network/cluster/instance names.
        network, subnetwork, router, nat, private_service_access_range: VPC names.
        cluster: GKE cluster name.
        node_service_account: account id of the GKE node service account.
        sql_instance: Cloud SQL instance name. database_name: the app database.
        uploads_bucket: ``<project>-<stack>-uploads`` (bucket names are global).
        uploads_topic, extractor_subscription, dead_letter_topic,
        dead_letter_subscription: Pub/Sub ids (short names).
        registry_repository: Artifact Registry repository id (the service images).
        registry_cache_repository: Artifact Registry repository id of the BuildKit cache.
        namespace: Kubernetes namespace of the services.
        service_accounts: ``{service: account id}`` of each service's Google service account.
        kubernetes_service_accounts: ``{service: Kubernetes ServiceAccount name}``
            (the chart must create them with these names for Workload Identity).
        database_users: ``{service: IAM database user}`` (``<id>@<project>.iam``,
            the Postgres form of a service account user).
        reconciler_service_account, reconciler_kubernetes_service_account,
        reconciler_database_user: the same three for :data:`RECONCILER`
            (``<stack>-reconciler``, :data:`RECONCILER_KSA`, ``<stack>-reconciler@<project>.iam``).
    """

    model_config = ConfigDict(frozen=True)

    prefix: str
    network: str
    subnetwork: str
    router: str
    nat: str
    private_service_access_range: str
    cluster: str
    node_service_account: str
    sql_instance: str
    database_name: str
    uploads_bucket: str
    uploads_topic: str
    extractor_subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    registry_repository: str
    registry_cache_repository: str
    namespace: str
    service_accounts: dict[str, str]
    kubernetes_service_accounts: dict[str, str]
    database_users: dict[str, str]
    reconciler_service_account: str
    reconciler_kubernetes_service_account: str
    reconciler_database_user: str

    @classmethod
    def derive(cls, project: str, stack: str) -> "Names":
        """Names for ``project`` and ``stack`` (``stack`` already validated)."""
        prefix = f"{PROJECT}-{stack}"
        accounts = {service: f"{stack}-{service}" for service in SERVICES}
        return cls(
            prefix=prefix,
            network=prefix,
            subnetwork=f"{prefix}-nodes",
            router=f"{prefix}-router",
            nat=f"{prefix}-nat",
            private_service_access_range=f"{prefix}-psa",
            cluster=prefix,
            node_service_account=f"{stack}-gke-nodes",
            sql_instance=f"{prefix}-pg",
            database_name="print_files",
            uploads_bucket=f"{project}-{stack}-uploads",
            uploads_topic=f"{stack}-uploads",
            extractor_subscription=f"{stack}-uploads-extractor",
            dead_letter_topic=f"{stack}-uploads-dead-letter",
            dead_letter_subscription=f"{stack}-uploads-dead-letter-inspect",
            registry_repository=f"{prefix}-services",
            registry_cache_repository=f"{prefix}-build-cache",
            namespace=PROJECT,
            service_accounts=accounts,
            kubernetes_service_accounts={service: service for service in SERVICES},
            database_users={service: f"{account}@{project}.iam" for service, account in accounts.items()},
            reconciler_service_account=f"{stack}-{RECONCILER}",
            reconciler_kubernetes_service_account=RECONCILER_KSA,
            reconciler_database_user=f"{stack}-{RECONCILER}@{project}.iam",
        )

    def service_account_email(self, service: str, project: str) -> str:
        """The e-mail of ``service``'s Google service account in ``project``."""
        return f"{self.service_accounts[service]}@{project}.iam.gserviceaccount.com"


class StackSettings(BaseModel):
    """Everything the program, the preview, the chart renderer and the local platform need for one stack.

    Attributes:
        stack: stack name. project, region: from ``gcp:project`` / ``gcp:region``.
        protect: True for stacks whose stateful resources are protected (prod).
        config: the validated :class:`StackConfig` (all keys).
        alerts: the validated :class:`AlertsConfig`.
        names: :class:`Names`. pubsub: the stack's :class:`infra.pubsub.PubSubConfig` (same as ``config.pubsub``).
        source: the stack file name used in error messages (``Pulumi.<stack>.yaml``).
    """

    model_config = ConfigDict(frozen=True)

    stack: str
    project: str
    region: str
    protect: bool
    config: StackConfig
    alerts: AlertsConfig
    names: Names
    pubsub: PubSubConfig
    source: str


# --------------------------------------------------------------------------- loading


def stack_file_name(stack: str) -> str:
    """``Pulumi.<stack>.yaml``."""
    return f"Pulumi.{stack}.yaml"


def alerts_file_name(stack: str) -> str:
    """``environments/<stack>/alerts.yaml`` (relative to the repo root)."""
    return f"environments/{stack}/alerts.yaml"


def _replace_secure(value: Any) -> Any:
    """Replace every ``{secure: <ciphertext>}`` in a stack-file value by :data:`SECRET_PLACEHOLDER`."""
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            return SECRET_PLACEHOLDER
        return {k: _replace_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v) for v in value]
    return value


def _read_yaml(path: Path, shown: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found ({path})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from None


def read_stack_file(stack: str, root: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read ``Pulumi.<stack>.yaml``'s ``config:`` mapping.

    Returns:
        ``(config, secret_keys)``: ``config`` maps full keys (``gcp:region``,
        ``print-platform:database``) to their YAML values with ``secure:`` values
        replaced by :data:`SECRET_PLACEHOLDER`; ``secret_keys`` lists the top-level
        keys that held a ``secure:`` value anywhere.

    Raises:
        ConfigError: the file is missing, not YAML, or has no ``config:`` mapping.
    """
    root = root or REPO_ROOT
    shown = stack_file_name(stack)
    return read_config_mapping(root / shown, shown)


def read_config_mapping(path: Path, shown: str) -> tuple[dict[str, Any], list[str]]:
    """The ``config:`` mapping of a Pulumi stack file at ``path`` (``shown`` names it in errors), as
    ``(config, secret_keys)`` (see :func:`read_stack_file`); used by the platform and the bootstrap.

    Raises:
        ConfigError: the file is missing, not YAML, or has no ``config:`` mapping.
    """
    document = _read_yaml(path, shown)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(f"{shown}: config: missing or not a mapping")
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in document["config"].items():
        replaced = _replace_secure(value)
        if json.dumps(replaced, default=str) != json.dumps(value, default=str):
            secret_keys.append(str(key))
        config[str(key)] = replaced
    return config, secret_keys


def read_alerts_file(stack: str, root: Path | None = None) -> Any:
    """The parsed ``environments/<stack>/alerts.yaml`` (raises :class:`ConfigError` if missing or not YAML)."""
    root = root or REPO_ROOT
    shown = alerts_file_name(stack)
    return _read_yaml(root / shown, shown)


_GCP_KEYS = ("gcp:project", "gcp:region")


def _cross_key_problems(stack_config: StackConfig, source: str) -> list[str]:
    """Rules across two concerns of the stack file ("an HA setting that contradicts another"), one line each."""
    found: list[str] = []
    # Why: a protected (production) stack must survive a zone outage; a ZONAL
    # database there would be a single point of failure behind protected resources.
    if stack_config.protect and stack_config.database.availability is not Availability.REGIONAL:
        found.append(
            f"{source}: print-platform:database.availability: is {stack_config.database.availability.value} "
            "but print-platform:protect is true; a protected stack needs REGIONAL (high availability)")
    # Why: the budget alerts the stack's notification channels, and the Budget API
    # takes at most BUDGET_MAX_CHANNELS (5); more would fail at `pulumi up`.
    if stack_config.budget is not None and len(stack_config.alerting.notification_emails) > BUDGET_MAX_CHANNELS:
        found.append(
            f"{source}: print-platform:alerting.notificationEmails: {len(stack_config.alerting.notification_emails)} "
            "addresses, but print-platform:budget alerts every channel and a Cloud Billing budget takes at most 5")
    return found


def parse_stack_settings(stack: str, config: Mapping[str, Any], alerts: Any) -> StackSettings:
    """Validate raw stack config and alert data; return :class:`StackSettings`.

    Args:
        stack: stack name (lower-case letters and digits, 2..12 chars, starting with a letter).
        config: full-key mapping as in the stack file's ``config:`` (values may be
            JSON strings, as the Pulumi engine passes structured values).
        alerts: the parsed ``environments/<stack>/alerts.yaml``.

    Raises:
        ConfigError: every problem found, one line each, naming the file and the key.
    """
    source = stack_file_name(stack)
    alerts_source = alerts_file_name(stack)
    if not _STACK.match(stack):
        raise ConfigError(f"{source}: stack name {stack!r} must be 2-12 lower-case letters/digits starting with a letter")
    decoded = {key: _decode_engine_value(value) for key, value in config.items()}
    # Our namespace is validated in full (unknown keys are typos). Of other namespaces
    # only gcp:project / gcp:region are ours; the rest (gcp:impersonateServiceAccount,
    # kubernetes:*, pulumi:*) configure providers, which validate them themselves.
    ours = {k: v for k, v in decoded.items() if k.startswith(f"{PROJECT}:") or k in _GCP_KEYS}
    found: list[str] = []
    stack_config: Optional[StackConfig] = None
    alerts_config: Optional[AlertsConfig] = None
    try:
        stack_config = StackConfig.model_validate(ours)
    except ValidationError as exc:
        found += _problems(exc, source, StackConfig)
    try:
        alerts_config = AlertsConfig.model_validate(alerts if alerts is not None else {})
    except ValidationError as exc:
        found += _problems(exc, alerts_source, AlertsConfig)
    if stack_config is not None:
        found += _cross_key_problems(stack_config, source)
    if stack_config is not None and alerts_config is not None:
        # Why: below the first re-drive bound the alert pages for files the reconciler has not tried yet.
        reconcile = stack_config.reconcile
        pending_alert = alerts_config.alerts["pending_age"]
        if pending_alert.threshold < reconcile.pending_bound_seconds:
            found.append(
                f"{alerts_source}: alerts.pending_age.threshold: {pending_alert.threshold:g} s is below "
                f"print-platform:reconcile.pendingBoundSeconds ({reconcile.pending_bound_seconds} s in {source}); "
                f"use the bound every file is final within: {reconcile.final_bound_seconds} s")
    if found:
        raise ConfigError(found)
    assert stack_config is not None and alerts_config is not None

    return StackSettings(
        stack=stack,
        project=stack_config.project,
        region=stack_config.region,
        protect=stack_config.protect,
        config=stack_config,
        alerts=alerts_config,
        names=Names.derive(stack_config.project, stack),
        pubsub=stack_config.pubsub,
        source=source,
    )


def _decode_engine_value(value: Any) -> Any:
    """Structured config arrives from the Pulumi engine as a JSON string; decode it."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_stack_settings(stack: str, root: Path | None = None) -> StackSettings:
    """Read and validate ``<root>/Pulumi.<stack>.yaml`` and ``<root>/environments/<stack>/alerts.yaml``.

    Args:
        stack: stack name (``dev``, ``prod``).
        root: repository root; defaults to this checkout.

    Raises:
        ConfigError: a missing file or key, or a malformed value; the message names
            the file and the key.
    """
    if not _STACK.match(stack):
        raise ConfigError(f"{stack_file_name(stack)}: stack name {stack!r} must be 2-12 lower-case letters/digits")
    config, _secret_keys = read_stack_file(stack, root)
    alerts = read_alerts_file(stack, root)
    return parse_stack_settings(stack, config, alerts)
