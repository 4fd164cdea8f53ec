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
import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import jsonschema
import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field, field_validator

from infra.config import ConfigModel
from infra.services import RECONCILER
from infra.services import SERVICES as _SETTINGS_SERVICES

ROOT = Path(__file__).resolve().parent.parent
#: The one chart of the small Flask services (see docs/chart.md for why one).
CHART_DIR = ROOT / "charts" / "print-service"
#: The services deployed (infra.settings.SERVICES), in deployment order: files-api
#: first (its hook migrates the schema). Release name = service name = Kubernetes
#: ServiceAccount name (the Workload Identity binding's KSA).
SERVICES: tuple[str, ...] = tuple(sorted(_SETTINGS_SERVICES, key=lambda s: s != "files-api"))
#: The migration hook Job's Kubernetes ServiceAccount: ``<release>-migrate``
#: (a hook resource itself, since pre-install hooks run before the release's
#: own ServiceAccount exists). :class:`Releases` binds Workload Identity for it.
MIGRATE_KSA_SUFFIX = "-migrate"
#: The release that runs the database migrations (its image and identity).
MIGRATIONS_SERVICE = "files-api"
#: The Secret (key ``key``) holding a custom IAP OAuth client secret, as GKE's
#: GCPBackendPolicy ``iap.oauth2ClientSecret`` expects.
IAP_SECRET_NAME = "files-api-iap-oauth"
#: Where the Helm values live: ``environments/<stack>/<service>.yaml`` per
#: environment, over ``environments/common/<service>.yaml`` for every stack.
ENVIRONMENTS_DIR = ROOT / "environments"
COMMON_ENVIRONMENT = "common"

#: Cloud SQL IAM database users of service accounts drop this suffix from the
#: email (https://cloud.google.com/sql/docs/postgres/add-manage-iam-users).
_GSA_EMAIL_SUFFIX = ".gserviceaccount.com"
#: Room in ``/tmp`` besides the spooled uploads, bytes (see :func:`check_tmp_capacity`).
#: What else lands in that emptyDir: files-api's prometheus_client multiprocess
#: files (``PROMETHEUS_MULTIPROC_DIR``, created by gunicorn.conf.py under
#: ``TMPDIR``): about 170 KiB per worker process (counter + histogram files,
#: measured with 288 request label combinations), and a worker recycled by
#: ``max_requests`` (every ~2000 requests) leaves its files until the pod
#: restarts, so 64 MiB is a few hundred worker generations; plus incidental
#: temp files of the libraries. The spool itself never overshoots:
#: ``CappedSpool`` refuses the write that would pass ``MAX_UPLOAD_BYTES``.
TMP_MARGIN_BYTES = 64 * 2**20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: Stands in for a digest that is an Output while the other values are computed;
#: :class:`Releases` replaces it by the Output itself (never deployed).
_PENDING_DIGEST = "sha256:" + "0" * 64
#: values.schema.json's ``quantity``: a number with an optional SI / binary suffix.
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_FACTORS = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                     "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_GSA_EMAIL = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$")


class ReleaseValuesError(ValueError):
    """A value given to the releases is malformed; the message names the service and the field.

    An environment file's problems are all reported at once: ``str()`` has one line
    each (``releases: <file>: <key>: <what is wrong>``) and ``problems`` the same lines
    without the ``releases: `` prefix.
    """

    def __init__(self, lines: Union[str, Sequence[str]]) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.problems = [line.removeprefix("releases: ") for line in self.lines]
        super().__init__("\n".join(self.lines))


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
        oauth_client_secret: the OAuth client secret (required with
            ``oauth_client_id``); :class:`Releases` stores it in the Secret
            :data:`IAP_SECRET_NAME` (key ``key``) that the policy references.
            Not part of the Helm values.
        audience: the JWT audience files-api verifies (``IAP_AUDIENCE``:
            ``/projects/<project number>/global/backendServices/<id>``); None
            leaves verification off in the app (IAP is still enforced at the
            load balancer, and the NetworkPolicy admits only its proxies).

    Source: https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources#configure_iap
    """

    oauth_client_id: Optional[pulumi.Input[str]] = None
    oauth_client_secret: Optional[pulumi.Input[str]] = None
    audience: Optional[pulumi.Input[str]] = None


class ReconcileConfig(ConfigModel):
    """``print-platform:reconcile``: the reconciler and the sweep (docs/extractor.md, "Reconciliation").

    Attributes:
        pending_bound_seconds: a stored file still ``pending`` this long after
            its upload finished (or its last re-drive) gets its notification
            re-driven (``PENDING_BOUND_SECONDS``), 30..86400.
        max_redrives: re-drives before the file is marked ``failed`` (``MAX_REDRIVES``), 0..20.
        interval_seconds: how often the reconciler runs: the CronJob's schedule
            (``*/<interval/60> * * * *``, so a multiple of 60 dividing 3600 when
            at least 60) and the local platform's loop; 10..3600.
        sweep_interval_seconds: how often ``files-api-sweep`` runs (same rules).
        unfinished_upload_age_seconds: the sweep removes upload rows without a
            generation (and their objects) older than this; it must exceed the
            longest upload (files-api's gunicorn timeout, 300 s), 360..604800.

    Derived: :attr:`final_bound_seconds`, within which every file answered
    201 ends ``processed`` or ``failed``.
    """

    pending_bound_seconds: int = Field(default=300, ge=30, le=86400)
    max_redrives: int = Field(default=3, ge=0, le=20)
    interval_seconds: int = Field(default=300, ge=10, le=3600,
                                  description="≥ 60: a multiple of 60 dividing 3600 (the CronJob's `*/N` minutes)")
    sweep_interval_seconds: int = Field(default=900, ge=10, le=3600, description="as `intervalSeconds`")
    unfinished_upload_age_seconds: int = Field(default=3600, ge=360, le=604800)

    @field_validator("interval_seconds", "sweep_interval_seconds")
    @classmethod
    def _cron_expressible(cls, v: int) -> int:
        if v >= 60 and (v % 60 or 3600 % v):
            raise ValueError(f"{v} is not expressible as a */N-minute schedule: use a divisor of 3600 that is a "
                             "multiple of 60 (60, 120, 180, 240, 300, 600, 900, 1200, 1800, 3600)")
        return v

    @property
    def final_bound_seconds(self) -> int:
        """Seconds within which a file answered 201 ends ``processed`` or ``failed``:
        the first wait plus one wait per re-drive, plus one reconciler period of lateness."""
        return self.pending_bound_seconds * (self.max_redrives + 1) + self.interval_seconds


def cron_schedule(interval_seconds: int) -> str:
    """A Kubernetes CronJob schedule running every ``interval_seconds`` (at least one minute: cron's resolution)."""
    minutes = max(1, interval_seconds // 60)
    return "* * * * *" if minutes == 1 else ("0 * * * *" if minutes == 60 else f"*/{minutes} * * * *")


@dataclass(frozen=True)
class ReconcileValues:
    """The reconciliation CronJobs' inputs: the stack's :class:`ReconcileConfig` and the names the program computes
    (docs/extractor.md).

    Attributes:
        config: ``print-platform:reconcile`` (``PENDING_BOUND_SECONDS``, ``MAX_REDRIVES``, the
            schedules from ``intervalSeconds`` / ``sweepIntervalSeconds``, the sweep's
            ``--older-than-seconds`` from ``unfinishedUploadAgeSeconds``).
        uploads_topic: the uploads topic id (short) the reconciler republishes to.
        dead_letter_subscription: the dead-letter subscription id (short) it re-drives.
        max_delivery_attempts: the extractor subscription's dead-letter
            ``maxDeliveryAttempts`` (``MAX_DELIVERY_ATTEMPTS``: the extractor counts
            the nacks that dead-letter a message).
    """

    config: ReconcileConfig
    uploads_topic: str
    dead_letter_subscription: str
    max_delivery_attempts: Optional[int] = None

    @classmethod
    def from_settings(cls, settings: Any) -> "ReconcileValues":
        """The stack's (``infra.settings.StackSettings``): its ``config.reconcile`` with the names it derives."""
        return cls(config=settings.config.reconcile, uploads_topic=settings.names.uploads_topic,
                   dead_letter_subscription=settings.names.dead_letter_subscription,
                   max_delivery_attempts=settings.pubsub.max_delivery_attempts)


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
        image_digests: service -> ``sha256:<64 hex>`` (the image the program
            built, or a digest pinned in the stack config ``images``); a
            service without one (None / absent) gets no release.
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
        database_users: service -> its Cloud SQL IAM database user (the
            ``sql.User`` names); a service missing here gets
            :func:`iam_database_user` of its email (the same rule).
        cluster_dns_cidrs: where the pods' DNS queries go besides the kube-dns
            pods: the cluster's Service range (the kube-dns ClusterIP, answered
            by NodeLocal DNSCache); NetworkPolicy egress on 53.
        reconcile: the reconciliation CronJobs' settings; None renders none.
            The reconciler's identity is ``service_account_emails`` /
            ``database_users`` under :data:`infra.services.RECONCILER`.
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
    database_users: Mapping[str, str] = field(default_factory=dict)
    cluster_dns_cidrs: Sequence[str] = ()
    reconcile: Optional[ReconcileValues] = None


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
        cloudsql_private_cidrs, database_users, cluster_dns_cidrs: as in
        :class:`StackOutputs`, as Inputs (``cluster_dns_cidrs``: plain strings).
        An ``image_digests`` value may be an Output (the ``digest`` of an
        image the program builds, infra/images.py): it is placed into the
        values as it is, so while it is unknown (a preview that rebuilds the
        image) only ``image.digest`` shows as computed, not the whole values.
        migrations_service_account_name: the files-api Google service
            account's resource name (``projects/<p>/serviceAccounts/<email>``,
            ``gcp.serviceaccount.Account.name``) and ``workload_pool`` the
            cluster's ``<project>.svc.id.goog``: with both, the component binds
            Workload Identity for the migration hook's Kubernetes ServiceAccount
            ``files-api-migrate`` (the service's own KSA is bound by infra/iam.py).
        reconcile: the reconciliation CronJobs' settings (:class:`ReconcileValues`);
            they render only when ``service_account_emails`` also holds the
            reconciler's (:data:`infra.services.RECONCILER`) account.
        protect: Pulumi ``protect`` on the releases (default False: a release
            holds no state and Helm rolls back a failed upgrade; the program
            keeps ``protect`` for the stack's stateful resources).
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
    image_digests: Mapping[str, Optional[pulumi.Input[str]]]
    service_account_emails: Mapping[str, pulumi.Input[str]]
    database_name: pulumi.Input[str]
    uploads_bucket: pulumi.Input[str]
    extractor_subscription: pulumi.Input[str]
    instance_connection_name: Optional[pulumi.Input[str]] = None
    gateway: Optional[GatewayRef] = None
    armor_policy_name: Optional[pulumi.Input[str]] = None
    iap: Optional[IapSettings] = None
    cloudsql_private_cidrs: Sequence[pulumi.Input[str]] = ()
    database_users: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    cluster_dns_cidrs: Sequence[str] = ()
    migrations_service_account_name: Optional[pulumi.Input[str]] = None
    workload_pool: Optional[pulumi.Input[str]] = None
    reconcile: Optional[ReconcileValues] = None
    protect: bool = False
    timeout_seconds: int = 600
    max_history: int = 10
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for service in SERVICES:
            _check(service in self.environment_values, f"environment_values[{service!r}]",
                   "missing (environments/<stack>/<service>.yaml)")
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
    owned by the stack: :func:`load_environment_values` rejects an
    environment file that sets one.

    Raises:
        ReleaseValuesError: unknown service, malformed digest / email / names.
    """
    _check(service in SERVICES, "service", f"unknown service {service!r}; expected one of {SERVICES}")
    digest = outputs.image_digests.get(service)
    _check(isinstance(digest, str) and bool(_DIGEST.match(digest)), f"{service}: image digest",
           f"must be sha256:<64 lower-case hex>, got {digest!r}")
    email = outputs.service_account_emails.get(service)
    _check(isinstance(email, str) and bool(_GSA_EMAIL.match(email)), f"{service}: service account email",
           f"not a service account email: {email!r}")
    repo = outputs.image_repository.rstrip("/")
    _check(bool(repo) and "@" not in repo and ":" not in repo.split("/")[-1], "image_repository",
           f"must be <region>-docker.pkg.dev/<project>/<repo> without tag or digest, got {outputs.image_repository!r}")

    values: dict[str, Any] = {
        "fullnameOverride": service,
        "chartChecksum": checksum,
        "image": {"repository": f"{repo}/{service}", "digest": digest},
        "serviceAccount": {"gcpServiceAccount": email},
        "database": {"name": outputs.database_name,
                     "user": outputs.database_users.get(service) or iam_database_user(email)},
        "cloudSqlProxy": {"instanceConnectionName": outputs.instance_connection_name or ""},
        "app": {"googleCloudProject": outputs.project_id, "uploadsBucket": outputs.uploads_bucket},
    }
    network_policy: dict[str, Any] = {}
    if outputs.cloudsql_private_cidrs:
        network_policy["cloudSqlCidrs"] = list(outputs.cloudsql_private_cidrs)
    if outputs.cluster_dns_cidrs:
        network_policy["dnsCidrs"] = list(outputs.cluster_dns_cidrs)
    if network_policy:
        values["networkPolicy"] = network_policy
    if service == "extractor":
        values["app"]["uploadsSubscription"] = outputs.extractor_subscription
    reconciler_email = outputs.service_account_emails.get(RECONCILER)
    rec = outputs.reconcile
    if rec is not None and service == "extractor" and rec.max_delivery_attempts:
        values["app"]["extraEnv"] = {"MAX_DELIVERY_ATTEMPTS": str(rec.max_delivery_attempts)}
    if rec is not None and service == "extractor" and reconciler_email:
        values["reconcile"] = {
            "enabled": True, "gcpServiceAccount": reconciler_email,
            "databaseUser": outputs.database_users.get(RECONCILER) or iam_database_user(reconciler_email),
            "uploadsTopic": rec.uploads_topic, "deadLetterSubscription": rec.dead_letter_subscription,
            "schedule": cron_schedule(rec.config.interval_seconds),
            "pendingBoundSeconds": rec.config.pending_bound_seconds, "maxRedrives": rec.config.max_redrives,
        }
    if rec is not None and service == "files-api":
        values["sweep"] = {"enabled": True, "schedule": cron_schedule(rec.config.sweep_interval_seconds),
                           "olderThanSeconds": rec.config.unfinished_upload_age_seconds}
        # /readyz checks the bucket's notification to this topic (files_api.notifications).
        values["app"]["extraEnv"] = {"UPLOADS_TOPIC": rec.uploads_topic}
    if service == MIGRATIONS_SERVICE:
        # The hook migrates as this service's database user, which then owns the
        # tables; the other services' users are granted row access
        # (pipeline-migrate MIGRATE_GRANT_TO, docs/services.md).
        others = [s for s in SERVICES if s != service]
        for other in others:
            _check(other in outputs.service_account_emails or other in outputs.database_users,
                   f"{service}: migrations", f"needs the database user of {other!r} to grant it access")
        grant_to = [outputs.database_users.get(o) or iam_database_user(outputs.service_account_emails[o])
                    for o in others]
        if reconciler_email:  # the reconciler writes failed results and re-drive counts
            grant_to.append(outputs.database_users.get(RECONCILER) or iam_database_user(reconciler_email))
        values["migrations"] = {"enabled": True, "grantTo": grant_to}
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
        custom_client = bool(iap and iap.oauth_client_id)
        route["iap"] = {
            "enabled": iap is not None,
            "clientID": iap.oauth_client_id if custom_client else "",
            "oauth2ClientSecretName": IAP_SECRET_NAME if custom_client else "",
        }
        values["route"] = route
        values["app"]["iapAudience"] = (iap.audience or "") if iap else ""
    return values


def checked_digest(service: str, digest: Any) -> str:
    """``digest`` if it is ``sha256:<64 lower-case hex>``.

    Raises:
        ReleaseValuesError: anything else (e.g. the empty digest of an image that was not pushed).
    """
    _check(isinstance(digest, str) and bool(_DIGEST.match(digest)), f"{service}: image digest",
           f"must be sha256:<64 lower-case hex>, got {digest!r}")
    return digest


def _with_digest(values: dict[str, Any], digest: Optional[pulumi.Output[str]], service: str) -> dict[str, Any]:
    """``values`` with ``image.digest`` replaced by the (checked) ``digest`` Output, when there is one."""
    if digest is None:
        return values
    values["image"]["digest"] = pulumi.Output.from_input(digest).apply(lambda d: checked_digest(service, d))
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


def _strip_required(schema: Any) -> Any:
    """A copy of a JSON schema without ``required`` keywords (an environment file is a partial values tree)."""
    if isinstance(schema, dict):
        return {k: _strip_required(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_strip_required(v) for v in schema]
    return schema


def _leaf_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            paths |= _leaf_paths(value, prefix + (key,))
        else:
            paths.add(prefix + (key,))
    return paths


def _stack_owned_paths(service: str) -> set[tuple[str, ...]]:
    """Value paths :func:`computed_values` sets for ``service`` (an environment file must not set them)."""
    sample = StackOutputs(
        project_id="sample-project", image_repository="europe-west1-docker.pkg.dev/sample-project/repo",
        image_digests={service: "sha256:" + "0" * 64},
        service_account_emails={s: f"sample-{s}@sample-project.iam.gserviceaccount.com" for s in SERVICES},
        database_name="db", uploads_bucket="bucket", extractor_subscription="sub",
        instance_connection_name="p:r:i", gateway=GatewayRef("g", "n", "https", "h.example.com"),
        armor_policy_name="armor", iap=IapSettings("client", None, "aud"), cloudsql_private_cidrs=("10.0.0.0/20",),
        cluster_dns_cidrs=("10.1.0.0/20",),
        reconcile=ReconcileValues(ReconcileConfig(pending_bound_seconds=60, max_redrives=1, interval_seconds=60,
                                                  sweep_interval_seconds=60, unfinished_upload_age_seconds=600),
                                  "topic", "dead-sub", 5),
    )
    sample = dataclasses.replace(sample, service_account_emails={
        **sample.service_account_emails, RECONCILER: "sample-rec@sample-project.iam.gserviceaccount.com"})
    return _leaf_paths(computed_values(service, sample, "0" * 64))


def environment_file(stack: str, service: str, root: Optional[Path] = None) -> Path:
    """``<root>/environments/<stack>/<service>.yaml`` (``stack`` may be :data:`COMMON_ENVIRONMENT`)."""
    return (root / "environments" if root else ENVIRONMENTS_DIR) / stack / f"{service}.yaml"


def _read_values_file(path: Path, shown: str, service: str) -> dict[str, Any]:
    """One values file, validated against the chart schema (without ``required``) and the stack-owned keys."""
    _check(path.is_file(), shown, "file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ReleaseValuesError(f"releases: {shown}: not valid YAML: {exc}") from None
    _check(isinstance(data, dict), shown, f"must be a mapping of Helm values, got {type(data).__name__}")
    schema = _strip_required(json.loads((CHART_DIR / "values.schema.json").read_text()))
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    # Every problem of the file at once, one line each.
    lines = [f"releases: {shown}: {'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
             for error in errors]
    owned = _stack_owned_paths(service)
    for path_ in sorted(_leaf_paths(data)):
        for owned_path in owned:
            if path_[: len(owned_path)] == owned_path or owned_path[: len(path_)] == path_:
                lines.append(
                    f"releases: {shown}: {'.'.join(path_)}: is set by the stack (infra/releases.py "
                    "computed_values), not by the environment file; remove it")
                break
    if lines:
        raise ReleaseValuesError(lines)
    return data


def quantity_bytes(quantity: Any) -> int:
    """A Kubernetes quantity as the chart's schema allows it (``768Mi``, ``1G``, ``512``, a number) in bytes, rounded up.

    Raises:
        ReleaseValuesError: not such a quantity.
    """
    if isinstance(quantity, (int, float)) and not isinstance(quantity, bool) and quantity >= 0:
        return math.ceil(Decimal(str(quantity)))
    match = _QUANTITY.match(quantity) if isinstance(quantity, str) else None
    _check(match is not None, "quantity", f"not a Kubernetes quantity: {quantity!r}")
    number, suffix = match.groups()
    return math.ceil(Decimal(number) * _QUANTITY_FACTORS[suffix or ""])


def _layer_value(layers: Sequence[tuple[str, Mapping[str, Any]]], *path: str) -> tuple[Any, str]:
    """The value at ``path`` in the last layer that sets it, and that layer's file (Helm's merge order)."""
    for shown, data in reversed(layers):
        node: Any = data
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            return node, shown
    return None, "(unset)"


def check_tmp_capacity(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """``/tmp`` (the emptyDir, ``tmpSizeLimit``) holds the worst case of spooled uploads and fits the pod's storage.

    files-api spools each upload to ``/tmp``; at most ``app.workers``
    (``WEB_CONCURRENCY``) x ``app.maxConcurrentUploads``
    (``MAX_CONCURRENT_UPLOADS``) x ``app.maxUploadBytes`` at once, plus
    :data:`TMP_MARGIN_BYTES`. An emptyDir past its ``sizeLimit`` gets the pod
    evicted, so ``tmpSizeLimit`` must cover that; and it must stay below the
    app container's ``resources.requests.ephemeral-storage`` (GKE Autopilot
    sets the limit to the request; logs count too). With ``app.maxUploadBytes``
    set, ``app.workers`` and ``app.maxConcurrentUploads`` must be set too: the
    chart does not rely on the app's defaults.

    Args:
        layers: ``(file shown in errors, values)`` in merge order: the chart's
            defaults, ``environments/common/<service>.yaml``,
            ``environments/<stack>/<service>.yaml``.

    Raises:
        ReleaseValuesError: the message names the file that sets the key, the
            key, and the numbers.
    """
    tmp, tmp_file = _layer_value(layers, "tmpSizeLimit")
    tmp_bytes = quantity_bytes(tmp)
    max_upload, upload_file = _layer_value(layers, "app", "maxUploadBytes")
    if int(max_upload or 0) > 0:
        workers, workers_file = _layer_value(layers, "app", "workers")
        uploads, uploads_file = _layer_value(layers, "app", "maxConcurrentUploads")
        _check(int(workers or 0) > 0 and int(uploads or 0) > 0, f"{upload_file}: app.maxUploadBytes",
               f"needs app.workers ({workers!r}, {workers_file}) and app.maxConcurrentUploads ({uploads!r}, "
               f"{uploads_file}) set above 0: /tmp is sized from them, the chart does not rely on the app's defaults")
        need = int(workers) * int(uploads) * int(max_upload) + TMP_MARGIN_BYTES
        _check(tmp_bytes >= need, f"{tmp_file}: tmpSizeLimit",
               f"{tmp} ({tmp_bytes} bytes) is below the worst case of spooled uploads, {need} bytes "
               f"({need / 2**20:.0f} MiB) = app.workers {workers} ({workers_file}) x app.maxConcurrentUploads "
               f"{uploads} ({uploads_file}) x app.maxUploadBytes {max_upload} ({upload_file}) + "
               f"{TMP_MARGIN_BYTES // 2**20} MiB margin; an emptyDir past its size limit gets the pod evicted: "
               "raise tmpSizeLimit (within resources.requests.ephemeral-storage) or lower "
               "app.maxConcurrentUploads / app.workers")
    storage, storage_file = _layer_value(layers, "resources", "requests", "ephemeral-storage")
    if storage is not None:
        _check(tmp_bytes < quantity_bytes(storage), f"{tmp_file}: tmpSizeLimit",
               f"{tmp} must be below resources.requests.ephemeral-storage {storage} ({storage_file}): the "
               "emptyDir counts against the pod's ephemeral storage, which GKE Autopilot limits to the request")


def load_environment_values(stack: str, service: str, root: Optional[Path] = None) -> dict[str, Any]:
    """The service's Helm values for ``stack``: ``environments/common/<service>.yaml`` under ``environments/<stack>/<service>.yaml``.

    ``common`` holds what is true of the service in every stack (component,
    port, shutdown timings, ...); the stack's file what differs per
    environment (replicas, resources, autoscaling bounds, log level, ...) and
    wins. Each file is checked against the chart's ``values.schema.json``
    (unknown keys, wrong types and out-of-range values are rejected;
    ``required`` is not applied, the chart defaults and the stack fill the
    rest) and must not set a value the stack computes (image, service
    account, database, ...). Over the chart's defaults, the result must pass
    :func:`check_tmp_capacity` (``/tmp`` holds the worst case of spooled uploads).

    Returns:
        The merged mapping.

    Raises:
        ReleaseValuesError: missing file, not YAML, not a mapping, a schema
            violation, a stack-owned key or a ``/tmp`` too small; the message
            names the file and the key.
    """
    _check(service in SERVICES, "service", f"unknown service {service!r}; expected one of {SERVICES}")
    _check(stack != COMMON_ENVIRONMENT, "stack", f"{COMMON_ENVIRONMENT!r} is not a stack")
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text()) or {}
    layers: list[tuple[str, Mapping[str, Any]]] = [(f"charts/{CHART_DIR.name}/values.yaml", defaults)]
    merged: dict[str, Any] = {}
    lines: list[str] = []
    for layer in (COMMON_ENVIRONMENT, stack):
        shown = f"environments/{layer}/{service}.yaml"
        try:
            data = _read_values_file(environment_file(layer, service, root), shown, service)
        except ReleaseValuesError as exc:
            lines += exc.lines
            continue
        layers.append((shown, data))
        merged = deep_merge(merged, data)
    if lines:
        raise ReleaseValuesError(lines)
    check_tmp_capacity(layers)
    return merged


def environment_problems(stack: str, root: Optional[Path] = None) -> list[str]:
    """Every problem of the services' environment files of ``stack``, one line each
    (``environments/<stack>/<service>.yaml: <key>: <what is wrong>``); [] when all load.

    The program reports them with the stack file's problems, before any resource.
    """
    found: list[str] = []
    for service in SERVICES:
        try:
            load_environment_values(stack, service, root)
        except ReleaseValuesError as exc:
            found += [p for p in exc.problems if p not in found]
    return found


def stack_outputs_from_settings(settings: Any, project_number: Optional[str] = None) -> StackOutputs:
    """:class:`StackOutputs` derived from ``infra.settings.StackSettings`` alone (no Pulumi engine).

    ``project_number``: the project's number, for the IAP audience
    (``/projects/<number>/global/backendServices/*``) when IAP is on; None
    leaves the audience unset (the number is not part of the stack config).

    The names follow the same derivations the infra components use: the
    Artifact Registry URL ``<region>-docker.pkg.dev/<project>/<registry repo>``
    (https://cloud.google.com/artifact-registry/docs/docker/names), the Cloud
    SQL connection name ``<project>:<region>:<instance>``, the Gateway
    ``external`` in the stack's namespace with listener ``https``, and the
    Cloud Armor policy ``<prefix>-armor`` (infra/loadbalancer.py).
    """
    from infra import loadbalancer  # local import: keeps this module importable without the edge component

    names = settings.names
    lb = settings.config.load_balancer
    iap = lb.iap
    return StackOutputs(
        project_id=settings.project,
        image_repository=f"{settings.region}-docker.pkg.dev/{settings.project}/{names.registry_repository}",
        image_digests={s: d for s in SERVICES if (d := settings.config.images.digest(s))},
        service_account_emails={**{s: names.service_account_email(s, settings.project) for s in SERVICES},
                                RECONCILER: f"{names.reconciler_service_account}@{settings.project}.iam.gserviceaccount.com"},
        database_name=names.database_name,
        uploads_bucket=names.uploads_bucket,
        extractor_subscription=names.extractor_subscription,
        instance_connection_name=f"{settings.project}:{settings.region}:{names.sql_instance}",
        gateway=GatewayRef(name="external", namespace=names.namespace,
                           section_name=loadbalancer.HTTPS_LISTENER, hostname=lb.domain),
        armor_policy_name=f"{names.prefix}-armor",
        iap=IapSettings(oauth_client_id=iap.oauth_client_id,
                        audience=loadbalancer.iap_audience_pattern(project_number) if project_number else None)
        if iap.enabled else None,
        cloudsql_private_cidrs=(str(settings.config.network.private_service_access),),
        database_users={**names.database_users, RECONCILER: names.reconciler_database_user},
        cluster_dns_cidrs=(settings.config.network.services_cidr,),
        reconcile=ReconcileValues.from_settings(settings),
    )


class Releases(pulumi.ComponentResource):
    """The Helm releases of files-api and extractor in the stack's namespace.

    Each release deploys its image by digest: the ``digest`` output of the
    image the program builds (infra/images.py) or a digest pinned in the stack
    config (``images``). A service given no digest at all gets no release
    (nothing to deploy); a warning says so.

    Attributes:
        releases: service -> its ``helm.v3.Release`` (deployed services only).
        iap_secret: the Secret holding a custom IAP OAuth client secret, or None.
        migrations_workload_identity: the ``roles/iam.workloadIdentityUser``
            binding of ``files-api-migrate`` on the files-api account, or None.
    """

    releases: dict[str, k8s.helm.v3.Release]

    def __init__(self, name: str, args: ReleasesArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:apps:Releases", name, None, opts)
        checksum = chart_checksum()
        gateway = args.gateway
        iap = args.iap
        child = pulumi.ResourceOptions(parent=self, provider=args.k8s_provider)

        self.iap_secret: Optional[k8s.core.v1.Secret] = None
        extra_deps: list[pulumi.Resource] = []
        if iap is not None and iap.oauth_client_id is not None:
            _check(iap.oauth_client_secret is not None, "iap.oauth_client_secret",
                   "required with iap.oauth_client_id (GCPBackendPolicy needs both)")
            self.iap_secret = k8s.core.v1.Secret(
                IAP_SECRET_NAME,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=IAP_SECRET_NAME, namespace=args.namespace,
                                                    labels={"app.kubernetes.io/part-of": "print-platform"}),
                type="Opaque",
                string_data={"key": pulumi.Output.secret(iap.oauth_client_secret)},
                opts=child,
            )
            extra_deps.append(self.iap_secret)

        self.migrations_workload_identity: Optional[gcp.serviceaccount.IAMMember] = None
        if args.migrations_service_account_name is not None and args.workload_pool is not None:
            ksa = MIGRATIONS_SERVICE + MIGRATE_KSA_SUFFIX
            member = pulumi.Output.all(args.workload_pool, args.namespace).apply(
                lambda parts: f"serviceAccount:{parts[0]}[{parts[1]}/{ksa}]")
            self.migrations_workload_identity = gcp.serviceaccount.IAMMember(
                f"{ksa}-workload-identity",
                service_account_id=args.migrations_service_account_name,
                role="roles/iam.workloadIdentityUser",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            extra_deps.append(self.migrations_workload_identity)

        # A digest that is an Output (an image the program builds) goes into the values
        # as that Output (see ReleasesArgs); a plain string is validated with the rest.
        pending = {s: d for s, d in args.image_digests.items() if d is not None and not isinstance(d, str)}
        identities = [*SERVICES, *([RECONCILER] if RECONCILER in args.service_account_emails else [])]

        def _outputs(resolved: Sequence[Any]) -> StackOutputs:
            (project, repo, db, ico, bucket, sub, gw_name, gw_ns, gw_section, gw_host,
             armor, iap_client, iap_aud, cidrs, db_users, *emails) = resolved
            return StackOutputs(
                project_id=project,
                image_repository=repo,
                image_digests={s: (_PENDING_DIGEST if s in pending else d)
                               for s, d in args.image_digests.items() if d},
                service_account_emails=dict(zip(identities, emails)),
                reconcile=args.reconcile,
                database_name=db,
                instance_connection_name=ico,
                uploads_bucket=bucket,
                extractor_subscription=sub,
                gateway=GatewayRef(gw_name, gw_ns, gw_section, gw_host) if gateway else None,
                armor_policy_name=armor,
                # The secret itself never enters the Helm values (only the Secret's name).
                iap=IapSettings(oauth_client_id=iap_client, audience=iap_aud) if iap else None,
                cloudsql_private_cidrs=tuple(cidrs),
                database_users=dict(db_users),
                cluster_dns_cidrs=tuple(args.cluster_dns_cidrs),
            )

        resolved_outputs = pulumi.Output.all(
            args.project_id, args.image_repository, args.database_name, args.instance_connection_name,
            args.uploads_bucket, args.extractor_subscription,
            gateway.name if gateway else None, gateway.namespace if gateway else None,
            gateway.section_name if gateway else None, gateway.hostname if gateway else None,
            args.armor_policy_name,
            iap.oauth_client_id if iap else None, iap.audience if iap else None,
            pulumi.Output.all(*args.cloudsql_private_cidrs),
            pulumi.Output.all(**dict(args.database_users)) if args.database_users else {},
            *(args.service_account_emails[s] for s in identities),
        ).apply(_outputs)

        self.releases = {}
        previous: Optional[k8s.helm.v3.Release] = None
        for service in SERVICES:
            if not args.image_digests.get(service):
                pulumi.log.warn(f"{service}: no image digest (neither built by the program nor pinned in "
                                f"print-platform:images.{service}.digest); its Helm release is not deployed",
                                resource=self)
                continue
            env_values = args.environment_values[service]
            values = resolved_outputs.apply(
                lambda outs, s=service, ev=env_values: _with_digest(
                    release_values(s, ev, outs, checksum), pending.get(s), s))
            # files-api first: its pre-install hook migrates the schema the extractor writes to.
            depends = list(args.depends_on) + extra_deps + ([previous] if previous is not None else [])
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
                    description=f"{service}, chart checksum {checksum[:12]}",
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
        self.register_outputs({f"{s}_status": r.status for s, r in self.releases.items()})
