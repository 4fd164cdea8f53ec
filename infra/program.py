"""The Pulumi program: validated settings -> one component per concern -> stack outputs.

``main()`` is what ``infra/__main__.py`` runs under the Pulumi engine (and what the
offline preview runs under the mock runtime). It validates the whole stack config
first (:func:`settings_from_engine`): a bad key fails with one message naming the key
and the stack file before any resource is registered.

Order of construction (each arrow is a real data dependency):

    Network -> GkeCluster (node SA, cluster, k8s provider, namespace) -> Registry (nodes read)
    Registry -> Images (built and pushed by the program; their digests feed the releases)
    PubSub -> Storage (bucket + finalize notification to the uploads topic)
    GkeCluster.workload_pool -> ServiceAccounts (GSAs + Workload Identity)
    ServiceAccounts.emails + Network -> Database (instance, database, IAM users)
    bucket + subscription + instance -> ServiceAccess (scoped grants)
    LoadBalancer (+ IAP grants) -> Helm releases -> Monitoring (uptime and 5xx alerts after the releases)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_gcp as gcp

from infra import apis, database, gke, iam, images as builds, network, pubsub, registry, storage
from infra import budget as billing
from infra import loadbalancer as edge
from infra import releases as apps
from infra import monitoring as alerting
from infra.settings import RECONCILER, SERVICES, ConfigError, StackSettings, parse_stack_settings, read_alerts_file

def labels_for(settings: StackSettings) -> dict[str, str]:
    """``{"app": "print-platform", "stack": <stack>, "managed-by": "pulumi"}``."""
    return {"app": "print-platform", "stack": settings.stack, "managed-by": "pulumi"}


@dataclass
class Platform:
    """Everything :func:`build` created, for the Helm releases and the tests.

    Attributes:
        settings: the validated :class:`StackSettings`.
        network, cluster, registry, pubsub, storage, accounts, database, access:
            the components (see their modules for the attributes they expose).
        images: the :class:`infra.images.Images` the program builds (services
            whose digest is pinned in the stack config are not built).
        load_balancer, releases, monitoring: the edge, Helm releases and alerting components.
        budget: the Cloud Billing budget (None when the stack config sets no ``budget``).
        outputs: the stack outputs, ``{name: Output | value}``.
    """

    settings: StackSettings
    network: network.Network
    cluster: gke.GkeCluster
    registry: registry.Registry
    pubsub: pubsub.PubSub
    storage: storage.Storage
    accounts: iam.ServiceAccounts
    database: database.Database
    access: iam.ServiceAccess
    images: Optional[builds.Images] = None
    load_balancer: Optional[edge.LoadBalancer] = None
    releases: Any = None
    monitoring: Optional[alerting.Monitoring] = None
    budget: Optional[billing.Budget] = None
    outputs: dict[str, Any] = field(default_factory=dict)


def settings_from_engine(stack: Optional[str] = None, root: Optional[Path] = None) -> StackSettings:
    """Validate the config the Pulumi engine passed to this program.

    Reads every ``gcp:*`` and ``print-platform:*`` key of the running stack (so
    ``pulumi config set`` values count; secrets arrive decrypted) and
    ``environments/<stack>/alerts.yaml``, and validates them with the same model as
    :func:`infra.settings.load_stack_settings`; checks the services' environment
    values files (:func:`infra.releases.environment_problems`) too.

    Raises:
        ConfigError: every problem, one line each naming the file and the key.
    """
    from pulumi.runtime import config as runtime_config

    stack = stack or pulumi.get_stack()
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw = {key: runtime_config.get_config(key) for key in sorted(keys)}
    found: list[str] = []
    settings: Optional[StackSettings] = None
    try:
        settings = parse_stack_settings(stack, raw, read_alerts_file(stack, root))
    except ConfigError as exc:
        found += exc.problems
    # The services' Helm values (environments/<stack>/<service>.yaml) are config too:
    # their problems are reported with the stack file's, before any resource.
    found += apps.environment_problems(stack, root)
    if found:
        raise ConfigError(found)
    assert settings is not None
    return settings


def build(settings: StackSettings) -> Platform:
    """Register every resource of the stack described by ``settings``; return the :class:`Platform`."""
    cfg = settings.config
    names = settings.names
    labels = labels_for(settings)

    # The APIs first; every resource registered after this waits for its API's Service
    # (one transformation for the whole stack, see infra/apis.py).
    services = apis.ApiServices("apis", apis.ApiServicesArgs(
        project=settings.project, services=apis.platform_apis(cfg.load_balancer.iap.enabled)))
    pulumi.runtime.register_stack_transformation(services.transformation)

    net = network.Network(
        "network",
        cfg.network,
        network.NetworkContext(
            project=settings.project,
            region=settings.region,
            network_name=names.network,
            subnetwork_name=names.subnetwork,
            router_name=names.router,
            nat_name=names.nat,
            psa_range_name=names.private_service_access_range,
            labels=labels,
        ),
    )

    cluster = gke.GkeCluster(
        "gke",
        cfg.gke,
        gke.GkeClusterContext(
            project=settings.project,
            region=settings.region,
            cluster_name=names.cluster,
            node_service_account_id=names.node_service_account,
            network_id=net.network_id,
            subnetwork_id=net.subnetwork_id,
            pods_range_name=net.pods_range_name,
            services_range_name=net.services_range_name,
            namespace=names.namespace,
            protect=settings.protect,
            labels=labels,
        ),
    )

    images = registry.Registry(
        "registry",
        registry.RegistryArgs(
            project=settings.project,
            region=settings.region,
            repository_id=names.registry_repository,
            cache_repository_id=names.registry_cache_repository,
            reader_members={"gke-nodes": cluster.node_service_account.member},
            labels=labels,
        ),
    )

    topics = pubsub.PubSub(
        "pubsub",
        cfg.pubsub,
        pubsub.PubSubContext(
            project=settings.project,
            uploads_topic=names.uploads_topic,
            extractor_subscription=names.extractor_subscription,
            dead_letter_topic=names.dead_letter_topic,
            dead_letter_subscription=names.dead_letter_subscription,
            labels=labels,
        ),
    )

    uploads = storage.Storage(
        "storage",
        cfg.storage,
        storage.StorageContext(
            project=settings.project,
            location=settings.region,
            bucket_name=names.uploads_bucket,
            uploads_topic_id=topics.uploads_topic_id,
            uploads_topic_name=topics.uploads_topic_name,
            protect=settings.protect,
            labels=labels,
        ),
    )

    accounts = iam.ServiceAccounts(
        "service-accounts",
        iam.ServiceAccountsArgs(
            project=settings.project,
            # The services' identities and the reconciler's own (least privilege: infra/iam.py).
            account_ids={**{s: names.service_accounts[s] for s in SERVICES},
                         RECONCILER: names.reconciler_service_account},
            kubernetes_service_accounts={**{s: names.kubernetes_service_accounts[s] for s in SERVICES},
                                         RECONCILER: names.reconciler_kubernetes_service_account},
            namespace=cluster.namespace,
            workload_pool=cluster.workload_pool,
        ),
    )

    db = database.Database(
        "database",
        cfg.database,
        database.DatabaseContext(
            project=settings.project,
            region=settings.region,
            instance_name=names.sql_instance,
            database_name=names.database_name,
            network_id=net.network_id,
            private_service_access=net.private_service_access,
            service_account_emails=accounts.emails,
            protect=settings.protect,
            labels=labels,
        ),
    )

    access = iam.ServiceAccess(
        "service-access",
        iam.ServiceAccessArgs(
            project=settings.project,
            members=accounts.members,
            bucket_name=uploads.bucket_name,
            subscription_name=topics.extractor_subscription_name,
            sql_instance_name=db.instance_name,
            uploads_topic_name=topics.uploads_topic_name,
            dead_letter_subscription_name=topics.dead_letter_subscription_name,
        ),
    )

    platform = Platform(
        settings=settings,
        network=net,
        cluster=cluster,
        registry=images,
        pubsub=topics,
        storage=uploads,
        accounts=accounts,
        database=db,
        access=access,
    )

    # --- Service images (infra/images.py) ---
    platform.images = _images(platform)

    # --- Load balancer (infra/loadbalancer.py) ---
    platform.load_balancer = _load_balancer(platform)

    # --- Helm releases (infra/releases.py) ---
    platform.releases = _releases(platform)

    # --- Monitoring (infra/monitoring.py) ---
    platform.monitoring = _monitoring(platform)

    # --- Billing budget (infra/budget.py) ---
    platform.budget = _budget(platform)

    platform.outputs = _outputs(platform)
    return platform


def _images(platform: Platform) -> Optional[builds.Images]:
    """The service images built from this checkout and pushed to the stack's repository (pinned services excepted)."""
    s = platform.settings
    if not s.config.images.unpinned():
        return None
    reg = platform.registry
    # The deploying identity's own short-lived OAuth token authenticates the push
    # (Artifact Registry accepts it as the password of "oauth2accesstoken"): no key,
    # no `docker login`, the same in CI (Workload Identity Federation) and on a laptop (ADC).
    token = gcp.organizations.get_client_config_output().access_token
    return builds.Images(
        "images",
        s.config.images,
        builds.ImagesContext(
            repository_url=reg.url,
            cache_repository_url=reg.cache_url,
            registry_host=reg.host,
            access_token=token,
            labels={"org.opencontainers.image.vendor": "print-platform"},
        ),
    )


def _image_digests(platform: Platform) -> dict[str, Any]:
    """service -> the digest its release deploys: pinned in the stack config, else the built image's output."""
    pinned = platform.settings.config.images
    built = platform.images.digests if platform.images is not None else {}
    return {svc: pinned.digest(svc) or built[svc] for svc in SERVICES}


def _load_balancer(platform: Platform) -> edge.LoadBalancer:
    """The edge: static IP, certificate, SSL policy, Cloud Armor and the Gateway in the services' namespace."""
    s = platform.settings
    return edge.LoadBalancer(
        "edge",
        s.config.load_balancer,
        edge.LoadBalancerContext(
            name_prefix=s.names.prefix,
            namespace=platform.cluster.namespace,
            k8s_provider=platform.cluster.k8s_provider,
            project=s.project,
            labels=labels_for(s),
        ),
    )


def _releases(platform: Platform) -> apps.Releases:
    """files-api and extractor as Helm releases, values = environments/<stack>/<service>.yaml + these outputs."""
    s = platform.settings
    lb = platform.load_balancer
    iap = s.config.load_balancer.iap
    secret = iap.oauth_client_secret.get_secret_value() if iap.oauth_client_secret is not None else None
    return apps.Releases(
        "apps",
        apps.ReleasesArgs(
            namespace=platform.cluster.namespace,
            k8s_provider=platform.cluster.k8s_provider,
            environment_values={svc: apps.load_environment_values(s.stack, svc) for svc in SERVICES},
            project_id=s.project,
            image_repository=platform.registry.url,
            image_digests=_image_digests(platform),
            service_account_emails=platform.accounts.emails,
            database_name=platform.database.database_name,
            database_users=platform.database.user_names,
            instance_connection_name=platform.database.connection_name,
            uploads_bucket=platform.storage.bucket_name,
            extractor_subscription=platform.pubsub.extractor_subscription_name,
            gateway=apps.GatewayRef(
                name=lb.gateway_name,
                namespace=lb.gateway_namespace,
                section_name=lb.https_section_name,
                hostname=lb.domain,
            ),
            armor_policy_name=lb.armor_policy_name,
            iap=apps.IapSettings(oauth_client_id=iap.oauth_client_id, oauth_client_secret=secret,
                                 audience=lb.iap_audience)
            if iap.enabled else None,
            cloudsql_private_cidrs=[s.config.network.private_service_access_cidr],
            cluster_dns_cidrs=[s.config.network.services_cidr],
            migrations_service_account_name=platform.accounts.accounts[apps.MIGRATIONS_SERVICE].name,
            workload_pool=platform.cluster.workload_pool,
            reconcile=apps.ReconcileValues.from_settings(s),
            # Not protected even in prod: releases hold no state (Helm rolls back a
            # failed upgrade); `protect` is for the stack's stateful resources.
            protect=False,
            # The service accounts' Workload Identity bindings, their grants and the IAM
            # database users must exist before the pods (and the migration hook) start.
            depends_on=[platform.accounts, platform.access, platform.database, lb]
            + ([platform.images] if platform.images is not None else []),
        ),
    )


def _monitoring(platform: Platform) -> alerting.Monitoring:
    """Notification channels, alert policies (thresholds from environments/<stack>/alerts.yaml), uptime check."""
    s = platform.settings
    return alerting.Monitoring(
        "monitoring",
        s.config.alerting,
        s.alerts,
        alerting.MonitoringContext(
            stack=s.stack,
            project=s.project,
            domain=s.config.load_balancer.domain,
            url_map_name_regex=platform.load_balancer.url_map_name_regex,
            extractor_subscription=platform.pubsub.extractor_subscription_name,
            dead_letter_subscription=platform.pubsub.dead_letter_subscription_name,
            sql_database_id=pulumi.Output.concat(s.project, ":", platform.database.instance_name),
            cluster_name=platform.cluster.cluster_name,
            namespace=platform.cluster.namespace,
            iap_enabled=s.config.load_balancer.iap.enabled,
            labels=labels_for(s),
            edge_depends_on=list(platform.releases.releases.values()),
        ),
    )


def _budget(platform: Platform) -> Optional[billing.Budget]:
    """The stack's monthly Cloud Billing budget, alerting the stack's notification channels (None without ``budget`` config)."""
    s = platform.settings
    config = s.config.budget
    if config is None:
        return None
    return billing.Budget(
        "budget",
        config,
        billing.BudgetContext(
            stack=s.stack,
            project=s.project,
            notification_channels=[c.name for c in platform.monitoring.channels],
        ),
    )


def _outputs(platform: Platform) -> dict[str, Any]:
    """The stack outputs (names are a contract with the deploy workflow and docs/infra.md)."""
    s = platform.settings
    outputs: dict[str, Any] = {
        "project": s.project,
        "region": s.region,
        "cluster_name": platform.cluster.cluster_name,
        "kubeconfig": platform.cluster.kubeconfig,
        "namespace": platform.cluster.namespace,
        "registry_url": platform.registry.url,
        "uploads_bucket": platform.storage.bucket_name,
        "uploads_topic": platform.pubsub.uploads_topic_name,
        "dead_letter_topic": platform.pubsub.dead_letter_topic_name,
        "extractor_subscription": platform.pubsub.extractor_subscription_name,
        "dead_letter_subscription": platform.pubsub.dead_letter_subscription_name,
        "database_connection_name": platform.database.connection_name,
        "database_name": platform.database.database_name,
        "database_users": platform.database.user_names,
        "service_account_emails": platform.accounts.emails,
        "node_service_account_email": platform.cluster.node_service_account_email,
    }
    outputs["load_balancer_ip"] = platform.load_balancer.ip_address
    outputs["url"] = platform.load_balancer.url
    # The deployed images (built by the program, or pinned in the stack config).
    outputs["image_digests"] = _image_digests(platform)
    return outputs


def run(root: Optional[Path] = None) -> Platform:
    """Validate the engine's config, build the stack and export its outputs.

    Args:
        root: repository root holding ``environments/`` (default: this checkout).

    Raises:
        ConfigError: the config is invalid; nothing has been registered.
    """
    settings = settings_from_engine(root=root)
    platform = build(settings)
    for name, value in platform.outputs.items():
        pulumi.export(name, value)
    return platform


def main() -> Platform:
    """The engine entry point: :func:`run`, with a config error reported as one line.

    Raises:
        pulumi.RunError: the config is invalid (message: ``<file>: <key>: <problem>``).
    """
    try:
        return run()
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
