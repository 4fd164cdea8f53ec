"""The stack's VPC: custom-mode network, one regional subnet with GKE secondary ranges,
Cloud Router + Cloud NAT, Private Service Access (for Cloud SQL private IP) and default firewall rules.

Sources: VPC-native clusters (https://cloud.google.com/kubernetes-engine/docs/concepts/alias-ips),
Private Google Access (https://cloud.google.com/vpc/docs/private-google-access),
Cloud NAT (https://cloud.google.com/nat/docs/overview),
Private Service Access (https://cloud.google.com/vpc/docs/configure-private-services-access),
load-balancer health-check ranges (https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, field_validator, model_validator

from infra.config import ConfigModel, private_network

#: Source ranges of Google Cloud load-balancer health checks and GFE proxies.
HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
#: The port files-api serves on (docs/seams.md: PORT); the only port the load balancer reaches.
FILES_API_PORT = 8080
#: Names of the subnet's secondary ranges (the cluster refers to them by name).
PODS_RANGE = "pods"
SERVICES_RANGE = "services"
#: The service producer Cloud SQL peers through.
SERVICE_NETWORKING = "servicenetworking.googleapis.com"


class NetworkConfig(ConfigModel):
    """``print-platform:network``, the inputs of :class:`Network`: the VPC's address plan (all private IPv4 CIDR blocks, non-overlapping).

    Attributes:
        subnet_cidr: primary range of the regional subnet (nodes, internal LBs), /8../29.
        pods_cidr: secondary range for GKE pods (/8../21; Autopilot wants >= /21 per
            https://cloud.google.com/kubernetes-engine/docs/concepts/alias-ips#cluster_sizing).
        services_cidr: secondary range for GKE services (/8../27).
        private_service_access_cidr: range reserved for Private Service Access
            (Cloud SQL private IP), /8../24 (https://cloud.google.com/vpc/docs/configure-private-services-access).
    """

    subnet_cidr: str = Field(description="private IPv4 CIDR, /8–/29")
    pods_cidr: str = Field(description="private IPv4 CIDR, /8–/21")
    services_cidr: str = Field(description="private IPv4 CIDR, /8–/27")
    private_service_access_cidr: str = Field(
        description="private IPv4 CIDR, /8–/24; the four ranges must not overlap")

    @field_validator("subnet_cidr")
    @classmethod
    def _subnet(cls, v: str) -> str:
        private_network(v, min_prefix=8, max_prefix=29)
        return v

    @field_validator("pods_cidr")
    @classmethod
    def _pods(cls, v: str) -> str:
        private_network(v, min_prefix=8, max_prefix=21)
        return v

    @field_validator("services_cidr")
    @classmethod
    def _services(cls, v: str) -> str:
        private_network(v, min_prefix=8, max_prefix=27)
        return v

    @field_validator("private_service_access_cidr")
    @classmethod
    def _psa(cls, v: str) -> str:
        private_network(v, min_prefix=8, max_prefix=24)
        return v

    @model_validator(mode="after")
    def _no_overlap(self) -> "NetworkConfig":
        ranges = {
            "subnetCidr": self.subnet_cidr,
            "podsCidr": self.pods_cidr,
            "servicesCidr": self.services_cidr,
            "privateServiceAccessCidr": self.private_service_access_cidr,
        }
        items = list(ranges.items())
        for i, (ka, va) in enumerate(items):
            for kb, vb in items[i + 1:]:
                if ipaddress.IPv4Network(va).overlaps(ipaddress.IPv4Network(vb)):
                    raise ValueError(f"{kb}: {vb} overlaps {ka} {va}")
        return self

    @property
    def private_service_access(self) -> ipaddress.IPv4Network:
        """The PSA range as a network (address + prefix length for ``GlobalAddress``)."""
        return ipaddress.IPv4Network(self.private_service_access_cidr)


@dataclass(frozen=True)
class NetworkContext:
    """What :class:`Network` takes besides its :class:`NetworkConfig`: where it lives and the physical names.

    Attributes:
        project: project id. region: region of the subnet, router and NAT.
        network_name, subnetwork_name, router_name, nat_name, psa_range_name: physical names
            (``infra.settings.Names``).
        labels: labels for the resources that take labels.
    """

    project: str
    region: str
    network_name: str
    subnetwork_name: str
    router_name: str
    nat_name: str
    psa_range_name: str
    labels: Mapping[str, str] = field(default_factory=dict)


class Network(pulumi.ComponentResource):
    """VPC, subnet, Cloud NAT, Private Service Access and firewall defaults.

    Attributes:
        vpc: the ``compute.Network``; ``network_id`` its id (Output[str]).
        subnetwork: the ``compute.Subnetwork``; ``subnetwork_id`` its id (Output[str]).
        pods_range_name, services_range_name: secondary range names (str).
        private_service_access: the ``servicenetworking.Connection`` (Cloud SQL depends on it).
    """

    def __init__(self, name: str, config: NetworkConfig, context: NetworkContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Why custom mode: auto-mode networks create a subnet in every region with
        # fixed ranges that collide with peered ranges; we own the address plan.
        self.vpc = gcp.compute.Network(
            "vpc",
            name=context.network_name,
            project=context.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description="print-platform VPC (managed by Pulumi)",
            opts=child,
        )
        self.network_id = self.vpc.id

        # Why Private Google Access: nodes have no external IPs (private nodes), yet
        # must reach Google APIs (Artifact Registry, GCS, Pub/Sub, Cloud SQL Admin).
        # Why flow logs: network forensics; sampled at 50% to bound cost.
        self.subnetwork = gcp.compute.Subnetwork(
            "nodes",
            name=context.subnetwork_name,
            project=context.project,
            region=context.region,
            network=self.vpc.id,
            ip_cidr_range=config.subnet_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=config.pods_cidr),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICES_RANGE, ip_cidr_range=config.services_cidr),
            ],
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_5_MIN",
                flow_sampling=0.5,
                metadata="INCLUDE_ALL_METADATA",
            ),
            opts=child,
        )
        self.subnetwork_id = self.subnetwork.id
        self.pods_range_name = PODS_RANGE
        self.services_range_name = SERVICES_RANGE

        # Why Cloud NAT: private nodes have no external IP; outbound internet access
        # (e.g. third-party endpoints) goes through NAT, never through node IPs.
        self.router = gcp.compute.Router(
            "router",
            name=context.router_name,
            project=context.project,
            region=context.region,
            network=self.vpc.id,
            opts=child,
        )
        self.nat = gcp.compute.RouterNat(
            "nat",
            name=context.nat_name,
            project=context.project,
            region=context.region,
            router=self.router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(
                    name=self.subnetwork.id,
                    source_ip_ranges_to_nats=["ALL_IP_RANGES"],
                )
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child,
        )

        # Why Private Service Access: Cloud SQL gets a private IP only (no public
        # IPv4); it lives in Google's producer VPC, peered through this reserved range.
        psa = ipaddress.IPv4Network(config.private_service_access_cidr)
        self.private_service_access_range = gcp.compute.GlobalAddress(
            "private-service-access",
            name=context.psa_range_name,
            project=context.project,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            address=str(psa.network_address),
            prefix_length=psa.prefixlen,
            network=self.vpc.id,
            opts=child,
        )
        self.private_service_access = gcp.servicenetworking.Connection(
            "private-service-access",
            network=self.vpc.id,
            service=SERVICE_NETWORKING,
            reserved_peering_ranges=[self.private_service_access_range.name],
            # Why ABANDON: Cloud SQL keeps using the peering for a while after its
            # instance is deleted, so deleting the connection fails with "Producer
            # services ... are still using this connection" and stops `pulumi destroy`
            # (terraform-provider-google #16275, #19908). Abandoned, the peering goes
            # with the VPC, which is deleted right after it.
            deletion_policy="ABANDON",
            opts=child,
        )

        # Firewall defaults. Why an explicit, logged deny-all at 65534: the implied
        # deny (65535) is not logged; anything not allowed above shows up in logs.
        self.deny_all_ingress = gcp.compute.Firewall(
            "deny-all-ingress",
            name=f"{context.network_name}-deny-all-ingress",
            project=context.project,
            network=self.vpc.id,
            direction="INGRESS",
            priority=65534,
            source_ranges=["0.0.0.0/0"],
            denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA"),
            opts=child,
        )
        # Why: the Gateway's load balancer reaches pods (container-native NEGs) only
        # from Google's health-check / proxy ranges, and only on the files-api port.
        self.allow_health_checks = gcp.compute.Firewall(
            "allow-lb-health-checks",
            name=f"{context.network_name}-allow-lb-health-checks",
            project=context.project,
            network=self.vpc.id,
            direction="INGRESS",
            priority=1000,
            source_ranges=list(HEALTH_CHECK_RANGES),
            destination_ranges=[config.pods_cidr],
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(FILES_API_PORT)])],
            log_config=gcp.compute.FirewallLogConfigArgs(metadata="EXCLUDE_ALL_METADATA"),
            opts=child,
        )

        self.register_outputs(
            {
                "network_id": self.network_id,
                "subnetwork_id": self.subnetwork_id,
            }
        )
