"""The services as Helm releases: files-api and extractor from ``charts/print-service``.

One ``pulumi_kubernetes.helm.v3.Release`` per service, in the stack's namespace,
through the GKE cluster's Kubernetes provider. Each release's values are
:func:`release_values`: the service's per-environment data
(``environments/<stack>/<service>.yaml``: replicas, resources, autoscaling
bounds, log level, ...) deep-merged with what the stack computes (project,
image digest, Google service account, Cloud SQL connection name, bucket and
subscription names, the Gateway, Cloud Armor policy, IAP) and a checksum of the
chart's files. The same pure function feeds ``tools/render.py`` so the
manifests rendered for review are exactly what the program deploys.

Release settings (pulumi-kubernetes ``helm.v3.ReleaseArgs``): ``atomic`` (a
failed upgrade rolls back), ``cleanup_on_fail``, wait for the workloads and the
migration hook Job (``skip_await=False``, ``wait_for_jobs``) with ``timeout``
seconds, ``create_namespace=False`` (the namespace belongs to the cluster
component), ``max_history``. Pulumi does not notice edits to a local chart's
templates on its own (the Release's inputs are the chart path and values), so
``chartChecksum`` -- a sha256 over the chart directory -- is a value: a template
change changes the Release's inputs and shows up in ``pulumi preview``.
"""
from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

ROOT = Path(__file__).resolve().parent.parent
#: The one chart of the small Flask services (see docs/chart.md for why one).
CHART_DIR = ROOT / "charts" / "print-service"
#: The services deployed, in deployment order. Release name = service name =
#: Kubernetes ServiceAccount name (the Workload Identity binding's KSA).
SERVICES: tuple[str, ...] = ("files-api", "extractor")
#: The migration hook Job's Kubernetes ServiceAccount: ``<release>-migrate``
#: (a hook resource itself, since pre-install hooks run before the release's
#: own ServiceAccount exists). Infra binds Workload Identity for it too.
MIGRATE_KSA_SUFFIX = "-migrate"
#: The release that runs the database migrations (its image and identity).
MIGRATIONS_SERVICE = "files-api"

#: Cloud SQL IAM database users of service accounts drop this suffix from the
#: email (https://cloud.google.com/sql/docs/postgres/add-manage-iam-users).
_GSA_EMAIL_SUFFIX = ".gserviceaccount.com"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_GSA_EMAIL = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ReleaseValuesError(ValueError):
    """A value given to the releases is malformed; the message names the service and the field."""


def _check(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ReleaseValuesError(f"releases: {where}: {message}")


@dataclass(frozen=True)
class GatewayRef:
    """Where files-api's HTTPRoute attaches (the edge component's Gateway).

    Attributes:
        name: Gateway object name.
        namespace: the Gateway's namespace.
        section_name: listener name for application routes (``https``).
        hostname: the public host name the route matches (the stack's domain).
    """

    name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    section_name: pulumi.Input[str]
    hostname: pulumi.Input[str]


@dataclass(frozen=True)
class IapSettings:
    """Identity-Aware Proxy on the files-api backend (``GCPBackendPolicy.spec.default.iap``).

    Attributes:
        oauth_client_id: OAuth client id (``clientID``); None uses GKE's
            Google-managed OAuth client.
        oauth_client_secret_name: name of the Kubernetes Secret (key ``key``)
            holding the OAuth client secret; required with ``oauth_client_id``.
        audience: the JWT audience files-api verifies (``IAP_AUDIENCE``:
            ``/projects/<project number>/global/backendServices/<id>``); None
            leaves verification off in the app (IAP still enforced at the LB).

    Source: https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources#configure_iap
    """

    oauth_client_id: Optional[pulumi.Input[str]] = None
    oauth_client_secret_name: Optional[pulumi.Input[str]] = None
    audience: Optional[pulumi.Input[str]] = None


@dataclass(frozen=True)
class StackOutputs:
    """The stack's values that go into the releases (resolved, plain data).

    :func:`release_values` takes this; :class:`Releases` builds it from
    :class:`ReleasesArgs` inside ``Output.all(...).apply``; ``tools/render.py``
    builds it from the offline preview / stack settings.

    Attributes:
        project_id: Google Cloud project id (``GOOGLE_CLOUD_PROJECT``).
        image_repository: Artifact Registry repository URL,
            ``<region>-docker.pkg.dev/<project>/<repo>``; a service's image is
            ``<image_repository>/<service>@<digest>``.
        image_digests: service -> ``sha256:<64 hex>`` (stack config ``images``).
        service_account_emails: service -> Google service account email
            (Workload Identity; the IAM database user is derived from it).
        database_name: Postgres database the services use.
        instance_connection_name: Cloud SQL ``project:region:instance``; None
            renders no Cloud SQL Auth Proxy sidecar.
        uploads_bucket: the uploads bucket name.
        extractor_subscription: the extractor's Pub/Sub subscription id (short).
        gateway: where files-api's HTTPRoute attaches; None renders no route.
        armor_policy_name: Cloud Armor security policy attached to files-api's
            backend; None attaches none.
        iap: IAP on files-api's backend; None leaves IAP off.
        cloudsql_private_cidrs: CIDRs of the Cloud SQL private IPs (the private
            services access range), for the NetworkPolicy egress on 3307;
            empty keeps the chart's default (the RFC 1918 ranges).
    """

    project_id: str
    image_repository: str
    image_digests: Mapping[str, str]
    service_account_emails: Mapping[str, str]
    database_name: str
    uploads_bucket: str
    extractor_subscription: str
    instance_connection_name: Optional[str] = None
    gateway: Optional[GatewayRef] = None
    armor_policy_name: Optional[str] = None
    iap: Optional[IapSettings] = None
    cloudsql_private_cidrs: Sequence[str] = ()


@dataclass(frozen=True)
class ReleasesArgs:
    """Inputs of :class:`Releases` (Pulumi Inputs where the value comes from another resource).

    Attributes:
        namespace: the stack's namespace (pass the Namespace's
            ``metadata.name`` so the releases wait for it).
        k8s_provider: the Kubernetes provider of the stack's GKE cluster.
        environment_values: service -> that service's per-environment Helm
            values (the data of ``environments/<stack>/<service>.yaml``, as
            loaded and validated by ``infra.settings``).
        project_id, image_repository, image_digests, service_account_emails,
        database_name, instance_connection_name, uploads_bucket,
        extractor_subscription, gateway, armor_policy_name, iap,
        cloudsql_private_cidrs: as in :class:`StackOutputs`, as Inputs.
        protect: protect the releases from ``pulumi destroy`` (prod).
        timeout_seconds: Helm's wait timeout for install / upgrade (incl. the
            migration hook Job), seconds.
        max_history: release revisions Helm keeps (rollback depth).
        depends_on: resources the releases must wait for besides their inputs
            (e.g. the Workload Identity IAM bindings, the database users).
    """

    namespace: pulumi.Input[str]
    k8s_provider: pulumi.ProviderResource
    environment_values: Mapping[str, Mapping[str, Any]]
    project_id: pulumi.Input[str]
    image_repository: pulumi.Input[str]
    image_digests: Mapping[str, str]
    service_account_emails: Mapping[str, pulumi.Input[str]]
    database_name: pulumi.Input[str]
    uploads_bucket: pulumi.Input[str]
    extractor_subscription: pulumi.Input[str]
    instance_connection_name: Optional[pulumi.Input[str]] = None
    gateway: Optional[GatewayRef] = None
    armor_policy_name: Optional[pulumi.Input[str]] = None
    iap: Optional[IapSettings] = None
    cloudsql_private_cidrs: Sequence[pulumi.Input[str]] = ()
    protect: bool = False
    timeout_seconds: int = 600
    max_history: int = 10
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for service in SERVICES:
            _check(service in self.environment_values, f"environment_values[{service!r}]",
                   "missing (environments/<stack>/<service>.yaml)")
            _check(service in self.image_digests, f"image_digests[{service!r}]", "missing (stack config images)")
            _check(service in self.service_account_emails, f"service_account_emails[{service!r}]", "missing")
        _check(isinstance(self.k8s_provider, pulumi.ProviderResource), "k8s_provider",
               f"must be a pulumi ProviderResource, got {type(self.k8s_provider).__name__}")
        _check(isinstance(self.timeout_seconds, int) and 60 <= self.timeout_seconds <= 3600, "timeout_seconds",
               f"must be an integer in 60..3600, got {self.timeout_seconds!r}")
        _check(isinstance(self.max_history, int) and self.max_history >= 2, "max_history",
               f"must be an integer >= 2 (a rollback needs the previous revision), got {self.max_history!r}")


def chart_checksum(chart_dir: Path = CHART_DIR) -> str:
    """sha256 (hex) over the chart directory: every file's relative path and bytes, sorted by path.

    Stable across machines (no timestamps or modes); changes when any template,
    helper, schema or default value changes.

    Raises:
        ReleaseValuesError: ``chart_dir`` has no ``Chart.yaml``.
    """
    _check((chart_dir / "Chart.yaml").is_file(), "chart", f"{chart_dir} has no Chart.yaml")
    digest = hashlib.sha256()
    for path in sorted(p for p in chart_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(chart_dir).as_posix()
        digest.update(rel.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def iam_database_user(service_account_email: str) -> str:
    """Cloud SQL IAM database user name of a service account: its email without ``.gserviceaccount.com``.

    Source: https://cloud.google.com/sql/docs/postgres/add-manage-iam-users
    ("for a service account, ... trim the .gserviceaccount.com suffix").

    Raises:
        ReleaseValuesError: not a user-managed service account email.
    """
    _check(isinstance(service_account_email, str) and bool(_GSA_EMAIL.match(service_account_email)),
           "service_account_email", f"not a service account email: {service_account_email!r}")
    return service_account_email[: -len(_GSA_EMAIL_SUFFIX)]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge of two values trees (Helm's own rule): mappings merge, anything else in ``override`` wins.

    Neither argument is modified.
    """
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def computed_values(service: str, outputs: StackOutputs, checksum: str) -> dict[str, Any]:
    """The values the stack computes for ``service`` (before merging the environment's data).

    Shape: a subtree of ``charts/print-service/values.yaml``. These keys are
    owned by the stack: an environment file that sets one is overridden.

    Raises:
        ReleaseValuesError: unknown service, malformed digest / email / names.
    """
    _check(service in SERVICES, "service", f"unknown service {service!r}; expected one of {SERVICES}")
    digest = outputs.image_digests.get(service)
    _check(isinstance(digest, str) and bool(_DIGEST.match(digest)), f"{service}: image digest",
           f"must be sha256:<64 lower-case hex>, got {digest!r}")
    email = outputs.service_account_emails.get(service)
    _check(email is not None, f"{service}: service account email", "missing")
    repo = outputs.image_repository.rstrip("/")
    _check(bool(repo) and "@" not in repo and ":" not in repo.split("/")[-1], "image_repository",
           f"must be <region>-docker.pkg.dev/<project>/<repo> without tag or digest, got {outputs.image_repository!r}")

    values: dict[str, Any] = {
        "fullnameOverride": service,
        "chartChecksum": checksum,
        "image": {"repository": f"{repo}/{service}", "digest": digest},
        "serviceAccount": {"gcpServiceAccount": email},
        "database": {"name": outputs.database_name, "user": iam_database_user(email)},
        "cloudSqlProxy": {"instanceConnectionName": outputs.instance_connection_name or ""},
        "app": {"googleCloudProject": outputs.project_id, "uploadsBucket": outputs.uploads_bucket},
    }
    if outputs.cloudsql_private_cidrs:
        values["networkPolicy"] = {"cloudSqlCidrs": list(outputs.cloudsql_private_cidrs)}
    if service == "extractor":
        values["app"]["uploadsSubscription"] = outputs.extractor_subscription
    if service == MIGRATIONS_SERVICE:
        values["migrations"] = {"enabled": True}
    if service == "files-api":
        route: dict[str, Any] = {"enabled": outputs.gateway is not None}
        if outputs.gateway is not None:
            route["gateway"] = {
                "name": outputs.gateway.name,
                "namespace": outputs.gateway.namespace,
                "sectionName": outputs.gateway.section_name,
            }
            route["hostnames"] = [outputs.gateway.hostname]
        route["securityPolicy"] = outputs.armor_policy_name or ""
        iap = outputs.iap
        route["iap"] = {
            "enabled": iap is not None,
            "clientID": (iap.oauth_client_id or "") if iap else "",
            "oauth2ClientSecretName": (iap.oauth_client_secret_name or "") if iap else "",
        }
        values["route"] = route
        values["app"]["iapAudience"] = (iap.audience or "") if iap else ""
    return values


def release_values(service: str, environment_values: Mapping[str, Any], outputs: StackOutputs,
                   checksum: Optional[str] = None) -> dict[str, Any]:
    """The complete values of ``service``'s release: environment data deep-merged under the stack's values.

    Args:
        service: one of :data:`SERVICES`.
        environment_values: the service's ``environments/<stack>/<service>.yaml`` data.
        outputs: the stack's resolved outputs.
        checksum: the chart checksum; default :func:`chart_checksum` of :data:`CHART_DIR`.

    Returns:
        A JSON-serialisable dict accepted by the chart's ``values.schema.json``.

    Raises:
        ReleaseValuesError: see :func:`computed_values`; ``environment_values``
            not a mapping.
    """
    _check(isinstance(environment_values, Mapping), f"{service}: environment values",
           f"must be a mapping, got {type(environment_values).__name__}")
    return deep_merge(environment_values, computed_values(service, outputs, checksum or chart_checksum()))


class Releases(pulumi.ComponentResource):
    """The Helm releases of files-api and extractor in the stack's namespace.

    Attributes:
        releases: service -> its ``helm.v3.Release``.
        statuses: service -> the release's ``status`` output (Helm's release status).
    """

    releases: dict[str, k8s.helm.v3.Release]

    def __init__(self, name: str, args: ReleasesArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:apps:Releases", name, None, opts)
        checksum = chart_checksum()
        gateway = args.gateway
        iap = args.iap

        def _outputs(resolved: Sequence[Any]) -> StackOutputs:
            (project, repo, db, ico, bucket, sub, gw_name, gw_ns, gw_section, gw_host,
             armor, iap_client, iap_secret, iap_aud, cidrs, *emails) = resolved
            return StackOutputs(
                project_id=project,
                image_repository=repo,
                image_digests=dict(args.image_digests),
                service_account_emails=dict(zip(SERVICES, emails)),
                database_name=db,
                instance_connection_name=ico,
                uploads_bucket=bucket,
                extractor_subscription=sub,
                gateway=GatewayRef(gw_name, gw_ns, gw_section, gw_host) if gateway else None,
                armor_policy_name=armor,
                iap=IapSettings(iap_client, iap_secret, iap_aud) if iap else None,
                cloudsql_private_cidrs=tuple(cidrs),
            )

        resolved_outputs = pulumi.Output.all(
            args.project_id, args.image_repository, args.database_name, args.instance_connection_name,
            args.uploads_bucket, args.extractor_subscription,
            gateway.name if gateway else None, gateway.namespace if gateway else None,
            gateway.section_name if gateway else None, gateway.hostname if gateway else None,
            args.armor_policy_name,
            iap.oauth_client_id if iap else None, iap.oauth_client_secret_name if iap else None,
            iap.audience if iap else None,
            pulumi.Output.all(*args.cloudsql_private_cidrs),
            *(args.service_account_emails[s] for s in SERVICES),
        ).apply(_outputs)

        self.releases = {}
        previous: Optional[k8s.helm.v3.Release] = None
        for service in SERVICES:
            env_values = args.environment_values[service]
            values = resolved_outputs.apply(
                lambda outs, s=service, ev=env_values: release_values(s, ev, outs, checksum))
            # files-api first: its pre-install hook migrates the schema the extractor writes to.
            depends = list(args.depends_on) + ([previous] if previous is not None else [])
            release = k8s.helm.v3.Release(
                service,
                k8s.helm.v3.ReleaseArgs(
                    name=service,
                    # Relative to the working directory Pulumi runs the program in, so the
                    # input is the same on every machine (an absolute path would diff).
                    chart=os.path.relpath(CHART_DIR, os.getcwd()),
                    namespace=args.namespace,
                    create_namespace=False,
                    values=values,
                    atomic=True,
                    cleanup_on_fail=True,
                    skip_await=False,
                    wait_for_jobs=True,
                    timeout=args.timeout_seconds,
                    max_history=args.max_history,
                    lint=True,
                    description=f"{service} (chart checksum {checksum[:12]})",
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.k8s_provider,
                    protect=args.protect,
                    depends_on=depends,
                ),
            )
            self.releases[service] = release
            previous = release
        self.statuses = {s: r.status for s, r in self.releases.items()}
        self.register_outputs({f"{s}_status": r.status for s, r in self.releases.items()})
