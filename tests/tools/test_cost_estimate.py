"""Hand-checked arithmetic of the cost estimate: one case (or more) per priced resource type.

Prices are the round figures of cost_support.SIMPLE_PRICES (the real table's rules,
allowances and type map); a month is 730 h. Each expected amount is worked out in
the comment beside it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cost_support import simple_table, usage
from infra.settings import load_stack_settings
from tools.cost.estimate import (
    ESTIMATORS,
    HELM_RELEASE_TYPE,
    PROJECT_LOGGING_TYPE,
    Context,
    EstimateError,
    autopilot_pod,
    cpu_cores,
    estimate,
    gib,
    logging_item,
    pods_item,
    replicas,
)

D = Decimal


@pytest.fixture(scope="module")
def prices():
    return simple_table()


@pytest.fixture(scope="module")
def settings():
    return load_stack_settings("prod")


def ctx_for(settings, prices, *resources: dict[str, Any], **usage_changes: Any) -> Context:
    return Context(settings=settings, prices=prices, usage=usage(**usage_changes), resources=list(resources))


def res(type_token: str, logical: str = "r", **inputs: Any) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::print-platform::{type_token}::{logical}", "type": type_token,
            "name": logical, "inputs": inputs}


def priced(lines) -> list[tuple[str, str]]:
    """(dimension, monthly) pairs, amounts as strings with cents."""
    return [(line.dimension, f"{line.monthly:.2f}") for line in lines]


def run(name: str, resource: dict[str, Any], ctx: Context):
    estimator = ESTIMATORS[name]
    assert estimator is not None
    return estimator(resource, ctx)


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize(("text", "cores"), [("250m", "0.25"), ("2", "2"), (0.5, "0.5"), ("1.5", "1.5")])
def test_cpu_quantities(text, cores):
    assert cpu_cores(text) == D(cores)


@pytest.mark.parametrize(("text", "gibs"), [("512Mi", "0.5"), ("2Gi", "2"), ("64Mi", "0.0625"), (2**30, "1")])
def test_byte_quantities(text, gibs):
    assert gib(text) == D(gibs)


@pytest.mark.parametrize("bad", ["1 core", "-1", "512MB", None])
def test_malformed_quantities_are_errors(bad):
    with pytest.raises(EstimateError):
        gib(bad) if bad != "1 core" else cpu_cores(bad)


# --------------------------------------------------------------------------- GKE Autopilot


def test_cluster_fee(settings, prices):
    cluster = res("gcp:container/cluster:Cluster", "cluster", enableAutopilot=True)
    # 730 h x $0.10 = $73.00
    assert priced(run("gkeCluster", cluster, ctx_for(settings, prices, cluster))) == [("cluster management fee", "73.00")]


def test_cluster_fee_with_the_free_tier_credit_is_zero(settings, prices):
    cluster = res("gcp:container/cluster:Cluster", "cluster", enableAutopilot=True)
    lines = run("gkeCluster", cluster, ctx_for(settings, prices, cluster, gke__clusterFeeCredit=True))
    # $73.00 fee, credit $74.40 capped at the fee: -$73.00
    assert priced(lines) == [("cluster management fee", "73.00"), ("GKE free-tier credit", "-73.00")]
    assert sum(line.monthly for line in lines) == 0


def test_a_standard_cluster_is_not_silently_priced(settings, prices):
    cluster = res("gcp:container/cluster:Cluster", "cluster")
    with pytest.raises(EstimateError, match="Standard"):
        run("gkeCluster", cluster, ctx_for(settings, prices, cluster))


def test_pod_shape_sums_containers():
    shape = autopilot_pod([{"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "2Gi"},
                           {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"}], simple_table())
    assert (shape.cpu, shape.memory_gib, shape.ephemeral_gib) == (D("0.35"), D("0.625"), D("2.0625"))


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        # below every minimum: 50m CPU, 52 MiB memory (then >= 1 GiB per vCPU: 0.05 GiB < 52 MiB), 10 MiB storage
        ({"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "1Mi"}, ("0.05", "0.05078125", "0.009765625")),
        # 1 vCPU with 512 MiB: memory raised to 1 GiB (1:1)
        ({"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"}, ("1", "1", "1")),
        # 0.25 vCPU with 4 GiB (1:16): CPU raised to 4 / 6.5
        ({"cpu": "250m", "memory": "4Gi", "ephemeral-storage": "1Gi"}, (str(D(4) / D("6.5")), "4", "1")),
    ],
)
def test_autopilot_raises_requests_to_its_minimums_and_ratio(requests, expected):
    shape = autopilot_pod([requests], simple_table())
    assert (shape.cpu, shape.memory_gib, shape.ephemeral_gib) == tuple(D(v) for v in expected)


def test_replicas_are_the_hpa_minimum_or_replica_count():
    assert replicas({"replicaCount": 2, "autoscaling": {"enabled": True, "minReplicas": 3}}) == 3
    assert replicas({"replicaCount": 2, "autoscaling": {"enabled": False, "minReplicas": 3}}) == 2


def test_pods_of_a_release(settings, prices):
    values = {
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "2Gi"}},
        "cloudSqlProxy": {"instanceConnectionName": "p:r:i",
                          "resources": {"requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"}}},
        "autoscaling": {"enabled": True, "minReplicas": 3},
        "podMonitoring": {"enabled": True, "interval": "30s"},
    }
    item = pods_item(ctx_for(settings, prices), "files-api", values, in_plan=True)
    assert (item.type, item.name) == (HELM_RELEASE_TYPE, "files-api")
    assert priced(item.lines) == [
        ("vCPU", "30.66"),               # 0.35 vCPU x 3 Pods x 730 h = 766.5 vCPU-h x $0.04 = $30.66
        ("memory", "6.84"),              # 0.625 GiB x 3 x 730 = 1,368.75 GiB-h x $0.005 = $6.84375
        ("ephemeral storage", "0.45"),   # 2.0625 GiB x 3 x 730 = 4,516.875 GiB-h x $0.0001 = $0.4516875
        ("Managed Prometheus samples", "1.58"),  # 100 series x 3 Pods x 87,600 scrapes = 26.28 M x $0.06
    ]
    assert item.monthly == D("39.53")


def test_pods_without_the_proxy_or_monitoring(settings, prices):
    values = {"resources": {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "1Gi"}},
              "cloudSqlProxy": {"instanceConnectionName": "", "resources": {"requests": {"cpu": "5"}}},
              "replicaCount": 2, "autoscaling": {"enabled": False}, "podMonitoring": {"enabled": False}}
    item = pods_item(ctx_for(settings, prices), "extractor", values, in_plan=False)
    # 1 vCPU x 2 x 730 = 1,460 x $0.04 = $58.40; 2 GiB x 2 x 730 = 2,920 x $0.005 = $14.60;
    # 1 GiB x 2 x 730 = 1,460 x $0.0001 = $0.146
    assert priced(item.lines) == [("vCPU", "58.40"), ("memory", "14.60"), ("ephemeral storage", "0.15")]
    assert "not in this plan" in item.note


# --------------------------------------------------------------------------- Cloud SQL


def sql(tier: str, availability: str, disk: int = 50, backups: bool = True) -> dict[str, Any]:
    return res("gcp:sql/databaseInstance:DatabaseInstance", "postgres", settings={
        "tier": tier, "edition": "ENTERPRISE", "availabilityType": availability, "diskSize": disk,
        "diskType": "PD_SSD", "backupConfiguration": {"enabled": backups}})


def test_cloud_sql_regional_custom_tier(settings, prices):
    instance = sql("db-custom-2-7680", "REGIONAL")
    assert priced(run("cloudSql", instance, ctx_for(settings, prices, instance))) == [
        ("vCPU", "116.80"),        # 2 vCPU x 730 h x 2 (HA) = 2,920 x $0.04
        ("memory", "54.75"),       # 7,680 MiB = 7.5 GiB x 730 x 2 = 10,950 x $0.005
        ("SSD storage", "20.00"),  # 50 GB x 2 (HA) x $0.20
        ("backups", "6.00"),       # 60 GiB (usage) x $0.10, not doubled
    ]


def test_cloud_sql_zonal_shared_core_without_backups(settings, prices):
    instance = sql("db-f1-micro", "ZONAL", disk=10, backups=False)
    assert priced(run("cloudSql", instance, ctx_for(settings, prices, instance))) == [
        ("instance db-f1-micro", "7.30"),  # 730 h x $0.01
        ("SSD storage", "2.00"),            # 10 GB x $0.20
    ]


def test_cloud_sql_enterprise_plus_tier(settings, prices):
    instance = res("gcp:sql/databaseInstance:DatabaseInstance", "postgres", settings={
        "tier": "db-perf-optimized-N-2", "edition": "ENTERPRISE_PLUS", "availabilityType": "ZONAL", "diskSize": 10})
    assert priced(run("cloudSql", instance, ctx_for(settings, prices, instance))) == [
        ("vCPU", "73.00"),         # 2 x 730 x $0.05
        ("memory", "116.80"),      # 16 GiB (8 per vCPU) x 730 x $0.01
        ("SSD storage", "2.00"),
    ]


def test_an_unpriced_cloud_sql_tier_is_an_error(settings, prices):
    instance = sql("db-n1-standard-1", "ZONAL")
    with pytest.raises(EstimateError, match="db-n1-standard-1"):
        run("cloudSql", instance, ctx_for(settings, prices, instance))


# --------------------------------------------------------------------------- network


def test_cloud_nat(settings, prices):
    nat = res("gcp:compute/routerNat:RouterNat", "nat", natIpAllocateOption="AUTO_ONLY")
    assert priced(run("cloudNat", nat, ctx_for(settings, prices, nat))) == [
        ("gateway (per VM)", "2.92"),        # 4 VMs x 730 h x $0.001
        ("external IP addresses", "3.65"),   # 1 address x 730 h x $0.005
        ("data processed", "1.00"),          # 20 GiB x $0.05
    ]


def test_cloud_nat_beyond_32_vms_and_manual_ips(settings, prices):
    nat = res("gcp:compute/routerNat:RouterNat", "nat", natIpAllocateOption="MANUAL_ONLY", natIps=["a", "b"])
    assert priced(run("cloudNat", nat, ctx_for(settings, prices, nat, network__natVms=40))) == [
        ("gateway (more than 32 VMs)", "29.20"),  # 730 h x $0.04 cap
        ("external IP addresses", "7.30"),        # 2 x 730 x $0.005
        ("data processed", "1.00"),
    ]


def gateway(name: str = "gateway", ports=(443, 80)) -> dict[str, Any]:
    return res("kubernetes:gateway.networking.k8s.io/v1:Gateway", name, spec={
        "gatewayClassName": "gke-l7-global-external-managed",
        "addresses": [{"type": "NamedAddress", "value": "the-ip"}],
        "listeners": [{"name": f"l{p}", "port": p} for p in ports]})


def test_load_balancer(settings, prices):
    gw = gateway()
    assert priced(run("loadBalancer", gw, ctx_for(settings, prices, gw))) == [
        ("forwarding rules (first 5)", "18.25"),   # 2 rules: one flat $0.025 x 730 h
        ("data processed", "2.40"),                 # (200 + 100) GiB x $0.008
        ("internet egress (Premium Tier)", "12.00"),  # 100 GiB x $0.12
    ]


def test_load_balancer_beyond_five_forwarding_rules(settings, prices):
    gw = gateway(ports=(80, 443, 8080, 8443, 9000, 9001, 9002))
    lines = run("loadBalancer", gw, ctx_for(settings, prices, gw))
    # 7 rules: $18.25 for the first 5, 2 x 730 h x $0.01 = $14.60
    assert priced(lines)[:2] == [("forwarding rules (first 5)", "18.25"), ("forwarding rules (beyond 5)", "14.60")]


def test_static_ip(settings, prices):
    gw = gateway()
    used = res("gcp:compute/globalAddress:GlobalAddress", "address", addressType="EXTERNAL", name="the-ip")
    unused = res("gcp:compute/globalAddress:GlobalAddress", "spare", addressType="EXTERNAL", name="spare-ip")
    internal = res("gcp:compute/globalAddress:GlobalAddress", "psa", addressType="INTERNAL", purpose="VPC_PEERING")
    ctx = ctx_for(settings, prices, gw, used, unused, internal)
    assert priced(run("globalAddress", used, ctx)) == [("static IP (in use by the Gateway)", "0.00")]
    assert priced(run("globalAddress", unused, ctx)) == [("static IP (not used by a Gateway of the plan)", "7.30")]
    assert run("globalAddress", internal, ctx) == []  # 730 h x $0.01 above; an internal range is free


def test_cloud_armor(settings, prices):
    policy = res("gcp:compute/securityPolicy:SecurityPolicy", "armor", rules=[{}, {}, {}, {}],
                 adaptiveProtectionConfig={"layer7DdosDefenseConfig": {"enable": True}})
    assert priced(run("cloudArmor", policy, ctx_for(settings, prices, policy))) == [
        ("policy", "5.00"), ("rules", "4.00"),    # 4 rules x $1
        ("requests", "3.75"),                     # 5 M x $0.75
        ("Adaptive Protection (Standard: alerts)", "0.00"),
    ]


def test_vpc_flow_logs_and_firewall_logging(settings, prices):
    subnet = res("gcp:compute/subnetwork:Subnetwork", "nodes", logConfig={"flowSampling": 0.5})
    quiet = res("gcp:compute/subnetwork:Subnetwork", "other")
    firewall = res("gcp:compute/firewall:Firewall", "deny", logConfig={"metadata": "INCLUDE_ALL_METADATA"})
    ctx = ctx_for(settings, prices, subnet, quiet, firewall)
    assert priced(run("vpcFlowLogs", subnet, ctx)) == [("VPC Flow Logs", "2.50")]  # 10 GiB x $0.25
    assert run("vpcFlowLogs", quiet, ctx) == []
    assert priced(run("firewallLogs", firewall, ctx)) == [("Firewall Rules Logging", "0.75")]  # 3 GiB x $0.25


def test_certificates_within_and_beyond_the_free_allowance(settings, prices):
    cert = res("gcp:certificatemanager/certificate:Certificate", "certificate")
    entry = res("gcp:certificatemanager/certificateMapEntry:CertificateMapEntry", "entry")
    ctx = ctx_for(settings, prices, cert, entry)
    assert priced(run("certificate", cert, ctx)) == [("certificate (free tier)", "0.00")]
    assert priced(run("certificateMapEntry", entry, ctx)) == [("map entry (free tier)", "0.00")]
    ctx.allowances["certificateManager.certificates"] = D(0)  # the project's 100 are used up
    ctx.allowances["certificateManager.mapEntries"] = D(0)
    assert priced(run("certificate", cert, ctx)) == [("certificate", "0.20")]
    assert priced(run("certificateMapEntry", entry, ctx)) == [("map entry", "0.05")]


# --------------------------------------------------------------------------- data services


def test_bucket(settings, prices):
    bucket = res("gcp:storage/bucket:Bucket", "uploads", location="EUROPE-WEST1", storageClass="STANDARD")
    other = res("gcp:storage/bucket:Bucket", "other", location="EUROPE-WEST1", storageClass="STANDARD")
    ctx = ctx_for(settings, prices, bucket, other)
    assert priced(run("bucket", bucket, ctx)) == [
        ("standard storage", "10.00"),     # 500 GiB x $0.02
        ("Class A operations", "0.25"),    # 50 thousand x $0.005
        ("Class B operations", "0.08"),    # 200 thousand x $0.0004
    ]
    assert run("bucket", other, ctx) == []  # the stack's usage is counted once


def test_a_multi_region_bucket_is_not_silently_priced(settings, prices):
    bucket = res("gcp:storage/bucket:Bucket", "uploads", location="EU", storageClass="STANDARD")
    with pytest.raises(EstimateError, match="EU"):
        run("bucket", bucket, ctx_for(settings, prices, bucket))


def test_pubsub_throughput_and_retention(settings, prices):
    topic = res("gcp:pubsub/topic:Topic", "uploads", messageRetentionDuration="86400s")
    plain = res("gcp:pubsub/topic:Topic", "dead-letter")
    subscription = res("gcp:pubsub/subscription:Subscription", "extractor", retainAckedMessages=False)
    ctx = ctx_for(settings, prices, topic, plain, subscription)
    assert priced(run("pubsubTopic", topic, ctx)) == [
        ("throughput (free tier)", "0.00"),  # the first 10 GiB
        ("throughput", "40.00"),             # 1,034 - 10 = 1,024 GiB = 1 TiB x $40
        ("retained messages", "2.70"),       # 10 GiB x $0.27
    ]
    assert run("pubsubTopic", plain, ctx) == []
    assert run("pubsubSubscription", subscription, ctx) == []  # unacked retention is free


def test_pubsub_retained_acked_messages(settings, prices):
    subscription = res("gcp:pubsub/subscription:Subscription", "extractor", retainAckedMessages=True)
    assert priced(run("pubsubSubscription", subscription, ctx_for(settings, prices, subscription))) == [
        ("retained messages", "2.70")]


def test_artifact_registry(settings, prices):
    repo = res("gcp:artifactregistry/repository:Repository", "services", format="DOCKER")
    assert priced(run("artifactRegistry", repo, ctx_for(settings, prices, repo))) == [
        ("storage (free tier)", "0.00"),  # 0.5 GB free
        ("storage", "0.25"),              # 2.5 GiB x $0.10
    ]


# --------------------------------------------------------------------------- observability


def test_uptime_check_within_and_beyond_the_free_executions(settings, prices):
    check = res("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig", "uptime", period="60s")
    ctx = ctx_for(settings, prices, check)
    lines = run("uptimeCheck", check, ctx)
    # 730 h x 60 per hour x 6 regions = 262,800 executions, inside the free million
    assert priced(lines) == [("executions (free tier)", "0.00")] and lines[0].quantity == 262_800
    ctx.allowances["monitoring.uptimeExecutions"] = D(0)
    # 262.8 thousand x $0.30 = $78.84
    assert priced(run("uptimeCheck", check, ctx)) == [("executions", "78.84")]
    three = res("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig", "three", period="300s",
                selectedRegions=["EUROPE", "USA", "ASIA_PACIFIC"])
    # 730 x 12 per hour x 3 regions = 26,280 executions x $0.0003 = $7.884
    assert priced(run("uptimeCheck", three, ctx)) == [("executions", "7.88")]


def test_alert_policy(settings, prices):
    policy = res("gcp:monitoring/alertPolicy:AlertPolicy", "sql-cpu", conditions=[{}])
    assert priced(run("alertPolicy", policy, ctx_for(settings, prices, policy))) == [
        ("conditions", "1.50"),              # 1 condition x $1.50
        ("time series returned", "0.09"),    # 1 x 3 series x 87,600 periods = 0.2628 M x $0.35 = $0.09198
    ]


def test_logging_beyond_the_free_50_gib(settings, prices):
    item = logging_item(ctx_for(settings, prices))
    assert item.type == PROJECT_LOGGING_TYPE
    assert priced(item.lines) == [("log ingestion (free tier)", "0.00"), ("log ingestion", "5.00")]  # 10 GiB x $0.50


# --------------------------------------------------------------------------- the whole estimate


def test_totals_are_sums_of_rounded_lines_and_budget_is_checked(settings, prices):
    document = {"resources": [
        res("gcp:container/cluster:Cluster", "cluster", enableAutopilot=True),
        res("gcp:compute/routerNat:RouterNat", "nat", natIpAllocateOption="AUTO_ONLY"),
        res("gcp:compute/network:Network", "vpc"),
        res("gcp:compute/instance:Instance", "vm"),
        res("print-platform:network:Network", "network"),
    ]}
    result = estimate(document, settings, usage(), prices)
    for item in result.items:
        assert item.monthly == sum(line.monthly for line in item.lines)
    assert result.total_monthly == sum(item.monthly for item in result.items)
    by_type = {i.type: i.monthly for i in result.items}
    assert by_type["gcp:container/cluster:Cluster"] == D("73.00")
    assert by_type["gcp:compute/routerNat:RouterNat"] == D("7.57")   # 2.92 + 3.65 + 1.00
    assert by_type[PROJECT_LOGGING_TYPE] == D("5.00")
    assert {i.name for i in result.items if i.type == HELM_RELEASE_TYPE} == {"files-api", "extractor"}
    # a free type is counted, a component is skipped, an unknown type is listed and warned about
    assert result.free["gcp:compute/network:Network"][0] == 1
    assert result.unpriced == [("gcp:compute/instance:Instance", "vm")]
    assert any("gcp:compute/instance:Instance" in w for w in result.warnings)
    over = result.total_monthly > settings.config.budget.amount_usd
    assert any("exceeds the prod budget" in w for w in result.warnings) == over


def test_an_estimate_over_the_budget_warns(prices):
    settings = load_stack_settings("dev")
    config = settings.config.model_copy(update={"budget": settings.config.budget.model_copy(update={"amount_usd": 50})})
    settings = settings.model_copy(update={"config": config})
    document = {"resources": [res("gcp:container/cluster:Cluster", "cluster", enableAutopilot=True)]}
    result = estimate(document, settings, usage(), prices)
    assert result.total_monthly > 50
    assert any(w.startswith(f"the estimate, USD {result.total_monthly:.2f}/month, exceeds the dev budget of USD 50")
               for w in result.warnings), result.warnings
