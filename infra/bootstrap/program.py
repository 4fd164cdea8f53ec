"""The bootstrap program: validated settings -> APIs -> state backend -> federation -> CI identities.

Run once per organisation (and again when a stack is added) by an engineer with Owner on
the seed project and the platform stacks' projects, with a local state file
(docs/infra.md "Running it for real"). Offline: ``make preview STACK=bootstrap``.

What it creates:

- in the seed project (``gcp:project``): the APIs of :data:`SEED_APIS`, the state bucket
  and KMS keys (:mod:`.state`), the GitHub workload identity pool and provider
  (:mod:`.federation`), and per platform stack a deploy and a preview service account
  (:mod:`.ci_identity`);
- in each platform stack's project: the APIs the platform program needs before it can
  enable the rest (:func:`infra.apis.before_program_apis`) and the CI accounts' roles,
  derived from the stack's API list (:func:`infra.apis.deploy_roles` / ``preview_roles``).

Every resource waits for the Service of its API in its own project (the same transformation
as the platform program, :func:`infra.apis.wait_for_apis`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi

from infra import apis
from infra.bootstrap import ci_identity, federation, state
from infra.bootstrap.settings import STACK, BootstrapSettings, ConfigError, parse_bootstrap_settings

#: The seed project's APIs: (service, why).
SEED_APIS: tuple[tuple[str, str], ...] = (
    (apis.SERVICE_USAGE, "enabling the others"),
    ("cloudresourcemanager.googleapis.com", "project look-ups and IAM"),
    ("iam.googleapis.com", "service accounts, workload identity pool and provider"),
    ("iamcredentials.googleapis.com", "CI impersonating the service accounts (generateAccessToken)"),
    ("sts.googleapis.com", "exchanging GitHub's OIDC token (Security Token Service)"),
    ("storage.googleapis.com", "the state bucket"),
    ("cloudkms.googleapis.com", "the stack secrets keys"),
)


def github_variables_for_stack(stack: str) -> dict[str, str]:
    """Repository-level variable names of ``stack`` (the preview workflow runs outside environments).

    ``{"preview_service_account": "GCP_PREVIEW_SERVICE_ACCOUNT_<STACK>",
    "backend_url": "PULUMI_BACKEND_URL_<STACK>"}``.
    """
    suffix = stack.upper()
    return {
        "preview_service_account": f"GCP_PREVIEW_SERVICE_ACCOUNT_{suffix}",
        "backend_url": f"PULUMI_BACKEND_URL_{suffix}",
    }


#: Variable names of the GitHub environment of each stack (the deploy workflow runs in it).
ENVIRONMENT_VARIABLES = {"deploy_service_account": "GCP_DEPLOY_SERVICE_ACCOUNT", "backend_url": "PULUMI_BACKEND_URL"}
#: The repository-level variable naming the provider.
PROVIDER_VARIABLE = "GCP_WORKLOAD_IDENTITY_PROVIDER"


@dataclass
class Bootstrap:
    """What :func:`build` created (for the outputs and the tests)."""

    settings: BootstrapSettings
    seed_apis: apis.ApiServices
    stack_apis: dict[str, apis.ApiServices]
    backend: state.StateBackend
    federation: federation.GithubFederation
    identities: dict[str, ci_identity.CiIdentity]
    outputs: dict[str, Any] = field(default_factory=dict)


def settings_from_engine(stack: Optional[str] = None, root: Optional[Path] = None) -> BootstrapSettings:
    """Validate the config the Pulumi engine passed (``pulumi config set`` values count).

    Raises:
        ConfigError: naming ``infra/bootstrap/Pulumi.<stack>.yaml`` and the key.
    """
    from pulumi.runtime import config as runtime_config

    stack = stack or pulumi.get_stack()
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw = {key: runtime_config.get_config(key) for key in sorted(keys)}
    return parse_bootstrap_settings(stack, raw, root)


def build(settings: BootstrapSettings) -> Bootstrap:
    """Register every resource of the bootstrap described by ``settings``."""
    names = settings.names
    seed = settings.project
    labels = {"app": "print-platform", "stack": settings.stack, "managed-by": "pulumi"}

    seed_apis = apis.ApiServices("seed-apis", apis.ApiServicesArgs(project=seed, services=[a for a, _ in SEED_APIS]))
    stack_apis: dict[str, apis.ApiServices] = {}
    for name, platform in sorted(settings.platform.items()):
        stack_apis[name] = apis.ApiServices(
            f"{name}-apis", apis.ApiServicesArgs(project=platform.project, services=apis.before_program_apis())
        )
    pulumi.runtime.register_stack_transformation(
        apis.wait_for_apis({seed: seed_apis, **{p.project: stack_apis[n] for n, p in settings.platform.items()}}, seed)
    )

    backend = state.StateBackend(
        "state",
        state.StateBackendArgs(
            project=seed,
            location=settings.region,
            bucket_name=names.state_bucket,
            noncurrent_version_retention_days=settings.config.state.noncurrent_version_retention_days,
            key_ring=names.key_ring,
            keys=names.keys,
            rotation_period_days=settings.config.kms.rotation_period_days,
            labels=labels,
        ),
    )
    github = federation.GithubFederation(
        "github",
        federation.GithubFederationArgs(
            project=seed,
            pool_id=names.pool,
            provider_id=names.provider,
            repository=settings.config.github.repository,
            deploy_refs={s: list(c.deploy_refs) for s, c in settings.config.stacks.items()},
        ),
    )
    identities: dict[str, ci_identity.CiIdentity] = {}
    for name, platform in sorted(settings.platform.items()):
        stack_api_list = apis.platform_apis(platform.config.load_balancer.iap.enabled)
        identities[name] = ci_identity.CiIdentity(
            f"{name}-ci",
            ci_identity.CiIdentityArgs(
                seed_project=seed,
                stack=name,
                stack_project=platform.project,
                deploy_account_id=names.deploy_accounts[name],
                preview_account_id=names.preview_accounts[name],
                deploy_roles=apis.deploy_roles(stack_api_list),
                preview_roles=apis.preview_roles(stack_api_list),
                preview_role_id=names.preview_role,
                deploy_principal=github.environment_principals[name],
                preview_principal=github.pull_request_principal,
                state_bucket=backend.bucket.name,
                state_bucket_name=names.state_bucket,
                key_id=backend.keys[name].id,
            ),
        )
    result = Bootstrap(settings, seed_apis, stack_apis, backend, github, identities)
    result.outputs = _outputs(result)
    return result


def _outputs(b: Bootstrap) -> dict[str, Any]:
    """The outputs, named as docs/infra.md and the workflows consume them."""
    stacks = sorted(b.identities)
    repository_variables: dict[str, Any] = {PROVIDER_VARIABLE: b.federation.provider_name}
    environment_variables: dict[str, dict[str, Any]] = {}
    for s in stacks:
        names = github_variables_for_stack(s)
        repository_variables[names["preview_service_account"]] = b.identities[s].preview_email
        repository_variables[names["backend_url"]] = b.backend.backend_urls[s]
        environment_variables[s] = {
            ENVIRONMENT_VARIABLES["deploy_service_account"]: b.identities[s].deploy_email,
            ENVIRONMENT_VARIABLES["backend_url"]: b.backend.backend_urls[s],
        }
    return {
        "state_bucket": b.backend.bucket.name,
        "backend_urls": b.backend.backend_urls,
        "secrets_providers": b.backend.secrets_providers,
        "workload_identity_provider": b.federation.provider_name,
        "deploy_service_accounts": {s: b.identities[s].deploy_email for s in stacks},
        "preview_service_accounts": {s: b.identities[s].preview_email for s in stacks},
        "stack_projects": {s: b.settings.platform[s].project for s in stacks},
        "github_repository_variables": repository_variables,
        "github_environment_variables": environment_variables,
    }


def run(root: Optional[Path] = None) -> Bootstrap:
    """Validate the engine's config, build, export the outputs (raises ConfigError before any resource)."""
    settings = settings_from_engine(root=root)
    result = build(settings)
    for name, value in result.outputs.items():
        pulumi.export(name, value)
    return result


def main() -> Bootstrap:
    """The engine entry point: :func:`run`, a config error reported as one line (pulumi.RunError)."""
    try:
        return run()
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


__all__ = ["STACK", "SEED_APIS", "Bootstrap", "build", "run", "main"]
