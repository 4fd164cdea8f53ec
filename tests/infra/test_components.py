"""Components in isolation under ``pulumi.runtime.set_mocks`` + ``@pulumi.runtime.test``:
the attributes other components consume (kubeconfig, workload pool, SQL connection name, IAM users).

Values are collected inside ``apply`` into a dict and asserted *after* the test function has
been awaited, so a callback that never runs fails the test instead of passing silently.
"""
from __future__ import annotations

import base64

import pulumi
import pytest
import yaml
from pulumi.runtime import settings as runtime_settings

from infra import database, gke, iam, network
from infra.settings import load_stack_settings
from tools.mock_runtime import PlatformMocks


def _mocks(stack: str) -> PlatformMocks:
    s = load_stack_settings(stack)
    mocks = PlatformMocks(s.project, s.region, s.config.network.private_service_access_cidr)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    pulumi.runtime.set_mocks(mocks, project="print-platform", stack=stack, preview=False)
    return mocks


def _network(s) -> network.Network:
    n = s.names
    return network.Network("network", s.config.network, network.NetworkContext(
        project=s.project, region=s.region, network_name=n.network, subnetwork_name=n.subnetwork,
        router_name=n.router, nat_name=n.nat, psa_range_name=n.private_service_access_range))


def _cluster(s, net: network.Network, dns_endpoint: bool = False) -> gke.GkeCluster:
    return gke.GkeCluster("gke", s.config.gke.model_copy(update={"dns_endpoint": dns_endpoint}), gke.GkeClusterContext(
        project=s.project, region=s.region, cluster_name=s.names.cluster,
        node_service_account_id=s.names.node_service_account, network_id=net.network_id,
        subnetwork_id=net.subnetwork_id, pods_range_name=net.pods_range_name,
        services_range_name=net.services_range_name, namespace=s.names.namespace, protect=s.protect))


@pytest.mark.parametrize("dns_endpoint", [False, True])
def test_cluster_kubeconfig_is_a_secret_built_from_the_cluster_outputs(dns_endpoint: bool):
    s = load_stack_settings("dev")
    _mocks("dev")
    seen: dict = {}

    @pulumi.runtime.test
    def program():
        cluster = _cluster(s, _network(s), dns_endpoint)

        async def collect():
            seen["secret"] = await cluster.kubeconfig.is_secret()
            seen["kubeconfig"] = await cluster.kubeconfig.future()
            seen["endpoint"] = await cluster.endpoint.future()
            config = await cluster.cluster.control_plane_endpoints_config.future()
            seen["dns"] = config.dns_endpoint_config.endpoint
            seen["pool"] = await cluster.workload_pool.future()
            seen["namespace"] = await cluster.namespace.future()

        return pulumi.Output.from_input(collect())

    program()
    assert seen["secret"] is True
    doc = yaml.safe_load(seen["kubeconfig"])
    server = doc["clusters"][0]["cluster"]["server"]
    if dns_endpoint:
        assert server == f"https://{seen['dns']}" and seen["dns"].endswith(f".{s.region}.gke.goog")
        assert "certificate-authority-data" not in doc["clusters"][0]["cluster"]
    else:
        assert server == f"https://{seen['endpoint']}"
        ca = base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        assert "BEGIN CERTIFICATE" in ca
    assert doc["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert seen["pool"] == f"{s.project}.svc.id.goog"
    assert seen["namespace"] == s.names.namespace


def test_database_exposes_connection_name_private_ip_and_iam_users():
    s = load_stack_settings("prod")
    _mocks("prod")
    seen: dict = {}

    @pulumi.runtime.test
    def program():
        net = _network(s)
        accounts = iam.ServiceAccounts("sa", iam.ServiceAccountsArgs(
            project=s.project, account_ids=s.names.service_accounts,
            kubernetes_service_accounts=s.names.kubernetes_service_accounts,
            namespace=s.names.namespace, workload_pool=f"{s.project}.svc.id.goog"))
        db = database.Database("database", s.config.database, database.DatabaseContext(
            project=s.project, region=s.region, instance_name=s.names.sql_instance,
            database_name=s.names.database_name, network_id=net.network_id,
            private_service_access=net.private_service_access, service_account_emails=accounts.emails,
            protect=s.protect))
        return pulumi.Output.all(db.connection_name, db.private_ip_address, db.user_names).apply(
            lambda v: seen.update(connection=v[0], ip=v[1], users=v[2]))

    program()
    assert seen["connection"] == f"{s.project}:{s.region}:{s.names.sql_instance}"
    import ipaddress
    assert ipaddress.ip_address(seen["ip"]) in ipaddress.ip_network(s.config.network.private_service_access_cidr)
    assert seen["users"] == s.names.database_users


def test_iam_user_name_drops_the_service_account_suffix():
    assert database.iam_user_name("a@p.iam.gserviceaccount.com") == "a@p.iam"
    assert database.iam_user_name("already@p.iam") == "already@p.iam"
