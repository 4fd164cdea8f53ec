"""Network and GKE invariants, asserted on the real program's registrations for each real stack file."""
from __future__ import annotations

import ipaddress

import yaml

from infra import gke
from infra.settings import StackSettings
from tools.mock_runtime import Capture

CLUSTER = "gcp:container/cluster:Cluster"


def test_vpc_is_custom_mode(run: Capture, settings: StackSettings):
    vpc = run.one("gcp:compute/network:Network")
    assert vpc.inputs["autoCreateSubnetworks"] is False
    assert vpc.inputs["name"] == settings.names.network


def test_subnet_has_secondary_ranges_and_private_google_access(run: Capture, settings: StackSettings):
    subnet = run.one("gcp:compute/subnetwork:Subnetwork")
    net = settings.config.network
    assert subnet.inputs["region"] == settings.region
    assert subnet.inputs["ipCidrRange"] == net.subnet_cidr
    assert subnet.inputs["privateIpGoogleAccess"] is True
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]}
    assert ranges == {"pods": net.pods_cidr, "services": net.services_cidr}


def test_cloud_nat_covers_the_subnet(run: Capture, settings: StackSettings):
    router = run.one("gcp:compute/router:Router")
    nat = run.one("gcp:compute/routerNat:RouterNat")
    assert router.inputs["region"] == nat.inputs["region"] == settings.region
    assert nat.inputs["router"] == settings.names.router
    assert router.urn in nat.dependencies
    subnet = run.one("gcp:compute/subnetwork:Subnetwork")
    assert [s["name"] for s in nat.inputs["subnetworks"]] == [
        f"projects/{settings.project}/regions/{settings.region}/subnetworks/{subnet.inputs['name']}"
    ]


def test_private_service_access_range_and_connection(run: Capture, settings: StackSettings):
    address = run.one("gcp:compute/globalAddress:GlobalAddress", "private-service-access")
    psa = ipaddress.IPv4Network(settings.config.network.private_service_access_cidr)
    assert address.inputs["purpose"] == "VPC_PEERING"
    assert address.inputs["addressType"] == "INTERNAL"
    assert (address.inputs["address"], address.inputs["prefixLength"]) == (str(psa.network_address), psa.prefixlen)
    connection = run.one("gcp:servicenetworking/connection:Connection")
    assert connection.inputs["service"] == "servicenetworking.googleapis.com"
    assert connection.inputs["reservedPeeringRanges"] == [address.inputs["name"]]
    # `pulumi destroy` must not stop at "Producer services are still using this connection"
    # (terraform-provider-google #16275, #19908): the peering goes with the VPC.
    assert connection.inputs["deletionPolicy"] == "ABANDON"


def test_firewall_defaults(run: Capture):
    rules = {r.name: r for r in run.of_type("gcp:compute/firewall:Firewall")}
    deny = rules["deny-all-ingress"]
    assert deny.inputs["direction"] == "INGRESS"
    assert deny.inputs["denies"] == [{"protocol": "all"}]
    assert deny.inputs["priority"] == 65534
    assert "logConfig" in deny.inputs
    # No allow rule is open to the internet.
    for rule in rules.values():
        if rule.inputs.get("allows"):
            assert "0.0.0.0/0" not in rule.inputs.get("sourceRanges", []), rule.name
    health = rules["allow-lb-health-checks"]
    assert sorted(health.inputs["sourceRanges"]) == ["130.211.0.0/22", "35.191.0.0/16"]


def test_cluster_is_regional_autopilot_with_private_nodes(run: Capture, settings: StackSettings):
    cluster = run.one(CLUSTER)
    assert cluster.inputs["enableAutopilot"] is True
    assert cluster.inputs["location"] == settings.region  # a region, not a zone
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert cluster.inputs["networkingMode"] == "VPC_NATIVE"
    assert cluster.inputs["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    # Autopilot enforces Shielded nodes itself; the provider rejects `enable_shielded_nodes`
    # (even `true`) together with `enable_autopilot`, so it must not be set at all.
    assert "enableShieldedNodes" not in cluster.inputs


#: Cluster fields a real `pulumi up` rejects on an Autopilot cluster: the provider's
#: `ConflictsWith: enable_autopilot` (enable_shielded_nodes, cluster_autoscaling.enabled,
#: addons network_policy_config / gcs_fuse_csi_driver_config) and the node-pool and
#: network-policy knobs Google manages on Autopilot
#: (https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-overview#comparison).
AUTOPILOT_REJECTS = ("enableShieldedNodes", "nodeConfig", "nodePools", "initialNodeCount",
                     "removeDefaultNodePool", "networkPolicy", "enableIntranodeVisibility",
                     "defaultMaxPodsPerNode", "enableTpu")


def test_cluster_sets_no_field_autopilot_rejects(run: Capture):
    inputs = run.one(CLUSTER).inputs
    assert inputs["enableAutopilot"] is True
    assert [key for key in AUTOPILOT_REJECTS if key in inputs] == []
    autoscaling = inputs.get("clusterAutoscaling", {})
    assert "enabled" not in autoscaling and "resourceLimits" not in autoscaling
    addons = inputs.get("addonsConfig", {})
    assert "networkPolicyConfig" not in addons and "gcsFuseCsiDriverConfig" not in addons
    # Managed Prometheus only: Autopilot manages the component list itself, and the API
    # refuses monitoring_config together with the legacy monitoring/logging_service.
    assert set(inputs["monitoringConfig"]) == {"managedPrometheus"}
    assert "monitoringService" not in inputs and "loggingService" not in inputs


def test_control_plane_is_not_open_to_the_internet(run: Capture, settings: StackSettings):
    config = run.one(CLUSTER).inputs["masterAuthorizedNetworksConfig"]
    blocks = [b["cidrBlock"] for b in config["cidrBlocks"]]
    assert blocks == [n.cidr_block for n in settings.config.gke.master_authorized_networks]
    assert blocks, "no authorized networks: the config would be meaningless"
    for block in blocks:
        assert ipaddress.IPv4Network(block).prefixlen >= 8, block
    assert config["gcpPublicCidrsAccessEnabled"] is False


def test_dns_endpoint_follows_the_config(run: Capture, settings: StackSettings):
    inputs = run.one(CLUSTER).inputs
    if settings.config.gke.dns_endpoint:
        assert inputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["allowExternalTraffic"] is True
    else:
        assert "controlPlaneEndpointsConfig" not in inputs


def test_cluster_security_and_operations_features(run: Capture, settings: StackSettings):
    inputs = run.one(CLUSTER).inputs
    assert inputs["workloadIdentityConfig"] == {"workloadPool": f"{settings.project}.svc.id.goog"}
    assert inputs["releaseChannel"] == {"channel": settings.config.gke.release_channel.value}
    assert inputs["releaseChannel"]["channel"] in {"REGULAR", "STABLE", "EXTENDED"}
    assert "minMasterVersion" not in inputs and "nodeVersion" not in inputs  # the channel decides, never "latest"
    assert inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert inputs["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
    assert inputs["monitoringConfig"]["managedPrometheus"]["enabled"] is True
    window = settings.config.gke.maintenance_window
    assert inputs["maintenancePolicy"]["recurringWindow"] == {
        "startTime": window.start_time, "endTime": window.end_time, "recurrence": window.recurrence}


def test_nodes_run_as_a_dedicated_least_privilege_account(run: Capture, settings: StackSettings):
    defaults = run.one(CLUSTER).inputs["clusterAutoscaling"]["autoProvisioningDefaults"]
    assert defaults["serviceAccount"] == f"{settings.names.node_service_account}@{settings.project}.iam.gserviceaccount.com"
    assert not defaults["serviceAccount"].endswith("-compute@developer.gserviceaccount.com")
    grants = [r for r in run.of_type("gcp:projects/iAMMember:IAMMember")
              if r.inputs["member"] == f"serviceAccount:{defaults['serviceAccount']}"]
    assert [g.inputs["role"] for g in grants] == ["roles/container.defaultNodeServiceAccount"]


def test_cluster_deletion_protection_follows_the_stack(run: Capture, settings: StackSettings):
    cluster = run.one(CLUSTER)
    assert cluster.inputs["deletionProtection"] is settings.protect
    assert cluster.protect is settings.protect


def test_kubernetes_provider_uses_the_cluster_and_a_secret_kubeconfig(run: Capture, settings: StackSettings):
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert run.one(CLUSTER).urn in provider.dependencies
    assert run.outputs["kubeconfig"] == "[secret]"
    # Every Kubernetes object goes through this provider, never an ambient default kubeconfig.
    k8s_objects = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert k8s_objects
    for obj in k8s_objects:
        assert obj.provider and obj.provider.startswith(provider.urn + "::"), obj.urn


def test_kubeconfig_uses_the_exec_plugin_and_no_static_credentials():
    assert yaml.safe_load(gke.kubeconfig_for("c", "gke-1.europe-west1.gke.goog", None))["clusters"][0]["cluster"] == {
        "server": "https://gke-1.europe-west1.gke.goog"}
    text = gke.kubeconfig_for("c", "203.0.113.10", "Q0E=")
    doc = yaml.safe_load(text)
    assert doc["clusters"][0]["cluster"] == {"server": "https://203.0.113.10", "certificate-authority-data": "Q0E="}
    user = doc["users"][0]["user"]
    assert set(user) == {"exec"}
    assert user["exec"]["command"] == "gke-gcloud-auth-plugin"
    for forbidden in ("token", "password", "client-key", "client-key-data", "auth-provider"):
        assert forbidden not in text


def test_services_namespace_enforces_restricted_pod_security(run: Capture, settings: StackSettings):
    namespace = run.one("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["name"] == settings.names.namespace
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_services_namespace_denies_all_traffic_by_default(run: Capture, settings: StackSettings):
    """Every pod of the namespace is isolated in both directions unless a release's policy admits its traffic."""
    namespace = run.one("kubernetes:core/v1:Namespace")
    (policy,) = run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policy.inputs["metadata"]["name"] == gke.DEFAULT_DENY_POLICY
    assert policy.inputs["metadata"]["namespace"] == settings.names.namespace
    spec = policy.inputs["spec"]
    assert spec["podSelector"] == {}, "an empty selector selects every pod of the namespace"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec and "egress" not in spec, "no rule: nothing allowed"
    # Wired like its siblings: a child of the GKE component, through the cluster's provider, after the namespace.
    assert policy.parent == namespace.parent
    assert policy.provider == namespace.provider
    assert namespace.urn in policy.dependencies
