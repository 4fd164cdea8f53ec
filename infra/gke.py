"""The GKE cluster (Autopilot, regional, private nodes), its node service account,
the Kubernetes provider built from the cluster's outputs, and the services' namespace
with its default-deny NetworkPolicy.

Why Autopilot (docs/infra.md has the long form): Autopilot clusters are regional,
use Shielded GKE nodes with Secure Boot, Workload Identity and Dataplane V2, and
auto-upgrade/auto-repair nodes — all enforced by Google and not switchable off —
and bill per pod, which suits two small stateless services. Standard would add node
pool knobs (machine types, taints, autoscaling) we do not need and could set unsafely.

Sources: https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-overview,
https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-security,
https://cloud.google.com/kubernetes-engine/docs/how-to/authorized-networks,
https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways#enable-gateway,
https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed,
https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin,
https://cloud.google.com/kubernetes-engine/docs/how-to/service-accounts#default-gke-service-agent.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field, field_validator, model_validator

from infra.config import ConfigModel

#: Minimal role for a custom node service account (logs, metrics, resource metadata);
#: https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster#use_least_privilege_sa
NODE_SA_ROLES = ("roles/container.defaultNodeServiceAccount",)
#: Nodes authorise with the service account's IAM roles; the scope only allows the token.
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Gateway API channel: the GA (v1) CRDs.
GATEWAY_API_CHANNEL = "CHANNEL_STANDARD"
#: Dataplane V2 (eBPF, built-in network policy enforcement).
DATAPLANE_V2 = "ADVANCED_DATAPATH"
#: Pod Security Standard enforced on the services' namespace.
POD_SECURITY_LEVEL = "restricted"
#: The namespace's default-deny NetworkPolicy (every pod, ingress and egress).
DEFAULT_DENY_POLICY = "default-deny"
#: The exec credential plugin of kubectl for GKE (no static credentials in the kubeconfig).
AUTH_PLUGIN = "gke-gcloud-auth-plugin"


class ReleaseChannel(str, Enum):
    """GKE release channels a stack may pin. RAPID (no SLA for new versions) and
    UNSPECIFIED (no channel: manual versions) are deliberately not offered
    (https://cloud.google.com/kubernetes-engine/docs/concepts/release-channels)."""

    REGULAR = "REGULAR"
    STABLE = "STABLE"
    EXTENDED = "EXTENDED"


class AuthorizedNetwork(ConfigModel):
    """One control-plane authorized network: ``cidrBlock`` (IPv4 CIDR, never 0.0.0.0/0) and ``displayName``."""

    cidr_block: str
    display_name: str = Field(min_length=1, max_length=60)

    @field_validator("cidr_block")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v, strict=True)
        except ValueError as exc:
            raise ValueError(f"{v!r} is not an IPv4 CIDR block ({exc})") from None
        # Why: an authorized network of /0 (or anything this wide) opens the
        # control plane to the internet, which the authorized-networks list exists to prevent.
        if net.prefixlen < 8:
            raise ValueError(f"{v} would open the control plane to a /{net.prefixlen}; use specific ranges")
        return v


#: RFC 5545 weekday codes (``BYDAY``).
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class MaintenanceWindow(ConfigModel):
    """GKE recurring maintenance window (RFC 3339 ``startTime``/``endTime`` in UTC, RFC 5545 ``recurrence``).

    GKE needs windows of at least 4 hours and 48 h of availability in any 32 days
    (https://cloud.google.com/kubernetes-engine/docs/concepts/maintenance-windows-and-exclusions);
    both are checked here, so the cluster update cannot fail on them.
    """

    start_time: str = Field(description="RFC 3339 with UTC offset")
    end_time: str = Field(description="RFC 3339; 4–24 h after `startTime`; with `recurrence` ≥ 48 h per 32 days (GKE)")
    recurrence: str = Field(pattern=r"^FREQ=(DAILY|WEEKLY)(;BYDAY=[A-Z,]+)?$")

    @model_validator(mode="after")
    def _window(self) -> "MaintenanceWindow":
        try:
            start = datetime.fromisoformat(self.start_time.replace("Z", "+00:00"))
            end = datetime.fromisoformat(self.end_time.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"startTime/endTime must be RFC 3339 timestamps, got {self.start_time!r}, {self.end_time!r}") from None
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("startTime/endTime need a UTC offset (e.g. 2026-01-03T01:00:00Z)")
        if end - start < timedelta(hours=4):
            raise ValueError(f"window {self.start_time}..{self.end_time} is shorter than GKE's 4-hour minimum")
        if end - start > timedelta(hours=24):
            raise ValueError(f"window {self.start_time}..{self.end_time} is longer than 24 hours")
        by_day = self.recurrence.partition(";BYDAY=")[2]
        days = by_day.split(",") if by_day else []
        unknown = [d for d in days if d not in _WEEKDAYS]
        if unknown or len(set(days)) != len(days):
            raise ValueError(f"recurrence: BYDAY must list distinct days of {list(_WEEKDAYS)}, got {by_day!r}")
        # GKE rejects a policy with less than 48 h of maintenance availability in any
        # 32-day window; in the worst case 32 days hold each weekday 4 times.
        per_32_days = 32 if self.recurrence.startswith("FREQ=DAILY") else 4 * max(1, len(days))
        hours = per_32_days * (end - start) / timedelta(hours=1)
        if hours < 48:
            raise ValueError(
                f"recurrence: {self.recurrence} with a {(end - start) / timedelta(hours=1):g} h window gives "
                f"{hours:g} h per 32 days; GKE needs at least 48 h (longer windows or more days)"
            )
        return self


class GkeConfig(ConfigModel):
    """``print-platform:gke``, the inputs of :class:`GkeCluster`: the few safe knobs of the Autopilot cluster.

    Attributes:
        release_channel: ``REGULAR`` | ``STABLE`` | ``EXTENDED``.
        master_authorized_networks: at least one :class:`AuthorizedNetwork`; the only
            sources (besides Google-internal ones) that reach the control plane.
        maintenance_window: :class:`MaintenanceWindow`.
        dns_endpoint: also enable the control plane's DNS-based endpoint
            (``gke-<id>.<region>.gke.goog``), authorised by IAM
            (``container.clusters.connect``) instead of source IP, and use it in the
            kubeconfig — for CI runners without fixed egress IPs. Default false.
    """

    release_channel: ReleaseChannel
    master_authorized_networks: list[AuthorizedNetwork] = Field(
        min_length=1, description="`cidrBlock`: IPv4 CIDR, no prefix shorter than /8 (never `0.0.0.0/0`)")
    maintenance_window: MaintenanceWindow
    dns_endpoint: bool = Field(
        default=False, description="enable the IAM-authorised DNS endpoint and use it in the kubeconfig")


@dataclass(frozen=True)
class GkeClusterContext:
    """What :class:`GkeCluster` takes besides its :class:`GkeConfig`.

    Attributes:
        project, region: where the regional cluster lives.
        cluster_name: cluster name. node_service_account_id: account id of the node SA.
        network_id, subnetwork_id: from :class:`infra.network.Network`.
        pods_range_name, services_range_name: the subnet's secondary range names.
        namespace: name of the services' namespace.
        protect: Pulumi ``protect`` + GKE ``deletion_protection`` (prod).
        labels: resource labels.
    """

    project: str
    region: str
    cluster_name: str
    node_service_account_id: str
    network_id: pulumi.Input[str]
    subnetwork_id: pulumi.Input[str]
    pods_range_name: str
    services_range_name: str
    namespace: str
    protect: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def kubeconfig_for(cluster_name: str, endpoint: str, ca_certificate: Optional[str]) -> str:
    """A kubeconfig (YAML) for the cluster using the ``gke-gcloud-auth-plugin`` exec credential.

    Args:
        cluster_name: used as cluster, user and context name.
        endpoint: the control plane's IP (``Cluster.endpoint``) or DNS endpoint host.
        ca_certificate: base64 PEM of the cluster CA (``master_auth.cluster_ca_certificate``)
            for the IP endpoint; None for the DNS endpoint, whose certificate is
            publicly trusted.

    The plugin obtains a short-lived token from the caller's gcloud / ADC credentials;
    the document holds no secret of its own (it is still exported as a secret because
    it names the endpoint and is sensitive operational data).
    """
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": f"https://{endpoint}"}
                | ({"certificate-authority-data": ca_certificate} if ca_certificate else {}),
            }
        ],
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": AUTH_PLUGIN,
                        "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
                        "provideClusterInfo": True,
                        "interactiveMode": "IfAvailable",
                    }
                },
            }
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
    }
    return yaml.safe_dump(document, sort_keys=False)


def _dns_endpoint(config: object) -> str:
    """``control_plane_endpoints_config.dns_endpoint_config.endpoint`` from the cluster output."""
    dns = config["dns_endpoint_config"] if isinstance(config, dict) else config.dns_endpoint_config
    return dns["endpoint"] if isinstance(dns, dict) else dns.endpoint


class GkeCluster(pulumi.ComponentResource):
    """Node service account, Autopilot cluster, Kubernetes provider, namespace and its default-deny policy.

    Attributes:
        cluster: the ``container.Cluster``; ``cluster_name`` its name (Output[str]).
        workload_pool: ``<project>.svc.id.goog`` read from the cluster (Output[str]),
            so Workload Identity bindings built from it wait for the cluster.
        node_service_account: the node ``serviceaccount.Account``; ``node_service_account_email`` (Output[str]).
        kubeconfig: the kubeconfig, secret (Output[str]); ``kubeconfig_server`` the
            endpoint host it points at (IP or DNS endpoint, Output[str]).
        k8s_provider: the ``pulumi_kubernetes.Provider`` for this cluster.
        namespace_resource: the services' ``Namespace``; ``namespace`` its name (Output[str]).
        default_deny: the namespace's default-deny ``NetworkPolicy`` (every pod,
            ingress and egress; the releases' own policies allow what they need).
    """

    def __init__(self, name: str, config: GkeConfig, context: GkeClusterContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:gke:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Why a dedicated node SA: the Compute Engine default SA has Editor on the project.
        self.node_service_account = gcp.serviceaccount.Account(
            "nodes",
            account_id=context.node_service_account_id,
            project=context.project,
            display_name="GKE nodes (print-platform)",
            description="Node service account of the GKE cluster: logs, metrics, image pulls only.",
            opts=child,
        )
        self.node_service_account_email = self.node_service_account.email
        node_roles = [
            gcp.projects.IAMMember(
                f"nodes-{role.split('/')[-1]}",
                project=context.project,
                role=role,
                member=self.node_service_account.member,
                opts=child,
            )
            for role in NODE_SA_ROLES
        ]

        window = config.maintenance_window
        self.cluster = gcp.container.Cluster(
            "cluster",
            name=context.cluster_name,
            project=context.project,
            # Why a region (not a zone): the control plane and nodes span three zones.
            location=context.region,
            # Why Autopilot: see the module docstring; it enforces Shielded nodes,
            # Secure Boot, Workload Identity and auto-upgrades (not settable off).
            enable_autopilot=True,
            network=context.network_id,
            subnetwork=context.subnetwork_id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=context.pods_range_name,
                services_secondary_range_name=context.services_range_name,
            ),
            # Why private nodes: nodes get no external IPs; egress goes through Cloud NAT.
            # The public endpoint stays, restricted to the authorized networks below.
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                enable_private_endpoint=False,
            ),
            # Why: the control plane answers only the configured CIDRs, and not the
            # whole of Google Cloud's public ranges (gcp_public_cidrs_access_enabled).
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[
                    gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                        cidr_block=net.cidr_block, display_name=net.display_name
                    )
                    for net in config.master_authorized_networks
                ],
                gcp_public_cidrs_access_enabled=False,
            ),
            # Why a channel (never a pinned "latest" version): Google rolls tested
            # versions within the maintenance window; the channel is per stack.
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=config.release_channel.value),
            # Optional DNS endpoint: every request is authorised by IAM, whatever its
            # source IP; the IP endpoint keeps the authorized-networks restriction.
            control_plane_endpoints_config=gcp.container.ClusterControlPlaneEndpointsConfigArgs(
                dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                    allow_external_traffic=True,
                ),
            )
            if config.dns_endpoint
            else None,
            # Why explicit although Autopilot's default: pods authenticate as Google
            # service accounts via the metadata server, never with keys.
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                workload_pool=f"{context.project}.svc.id.goog",
            ),
            datapath_provider=DATAPLANE_V2,
            gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(channel=GATEWAY_API_CHANNEL),
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True),
            ),
            maintenance_policy=gcp.container.ClusterMaintenancePolicyArgs(
                recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
                    start_time=window.start_time,
                    end_time=window.end_time,
                    recurrence=window.recurrence,
                ),
            ),
            # Autopilot node defaults: run nodes as the least-privilege SA above.
            cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
                auto_provisioning_defaults=gcp.container.ClusterClusterAutoscalingAutoProvisioningDefaultsArgs(
                    service_account=self.node_service_account.email,
                    oauth_scopes=[CLOUD_PLATFORM_SCOPE],
                ),
            ),
            deletion_protection=context.protect,
            resource_labels=dict(context.labels),
            opts=pulumi.ResourceOptions(parent=self, protect=context.protect, depends_on=node_roles),
        )
        self.cluster_name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.workload_pool = self.cluster.workload_identity_config.apply(
            lambda cfg: cfg["workload_pool"] if isinstance(cfg, dict) else cfg.workload_pool
        )

        if config.dns_endpoint:
            server = self.cluster.control_plane_endpoints_config.apply(_dns_endpoint)
            ca_certificate: pulumi.Input[Optional[str]] = None
        else:
            server = self.cluster.endpoint
            ca_certificate = self.cluster.master_auth.apply(
                lambda auth: auth["cluster_ca_certificate"] if isinstance(auth, dict) else auth.cluster_ca_certificate
            )
        self.kubeconfig_server = server
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(self.cluster.name, server, ca_certificate).apply(
                lambda parts: kubeconfig_for(parts[0], parts[1], parts[2])
            )
        )
        self.k8s_provider = k8s.Provider(
            "gke",
            kubeconfig=self.kubeconfig,
            # Why: the provider is replaced (and with it every Kubernetes object) only
            # when the cluster identity changes, not when its endpoint or CA rotates.
            cluster_identifier=context.cluster_name,
            opts=child,
        )

        # Why "restricted": the services run as non-root without privileges;
        # the namespace refuses pods that do not (Pod Security Admission).
        self.namespace_resource = k8s.core.v1.Namespace(
            "services",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=context.namespace,
                labels={
                    "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
                    "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
                    "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=self.k8s_provider),
        )
        self.namespace = self.namespace_resource.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name)

        # Why: deny by default for every pod of the namespace, in both directions.
        # Each Helm release's NetworkPolicies allow what its pods need (the
        # service's, and the migration hook Job's own policy, a hook created before
        # the Job); any other pod -- a debug pod, a future workload, a hook without
        # a policy -- gets no traffic until a policy admits it. An empty podSelector
        # selects every pod; policyTypes with no rules allow nothing
        # (https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-policies).
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            "default-deny",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DEFAULT_DENY_POLICY,
                namespace=self.namespace,
                labels={"app.kubernetes.io/part-of": "print-platform"},
            ),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=self.k8s_provider),
        )

        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "namespace": self.namespace,
            }
        )
