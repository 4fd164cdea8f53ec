"""The edge (infra/loadbalancer.py) in the real program, once per real stack file.

The ``run`` fixture (tests/infra/conftest.py) is the program for ``Pulumi.<stack>.yaml``
run under the mock runtime; each test reads the captured registrations afterwards (no
assertion lives inside an ``apply``) and compares them with the stack's settings, so a
changed stack file or a broken component fails a test.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra import loadbalancer as lb
from infra.settings import StackSettings
from tools.mock_runtime import Capture

ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
CERT = "gcp:certificatemanager/certificate:Certificate"
CERT_MAP = "gcp:certificatemanager/certificateMap:CertificateMap"
CERT_MAP_ENTRY = "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry"
SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
GATEWAY_POLICY = "kubernetes:networking.gke.io/v1:GCPGatewayPolicy"
COMPONENT = "print-platform:edge:LoadBalancer"
K8S_PROVIDER = "pulumi:providers:kubernetes"
NAMESPACE = "kubernetes:core/v1:Namespace"
GCP_TYPES = (ADDRESS, CERT, CERT_MAP, CERT_MAP_ENTRY, SSL_POLICY, ARMOR)
K8S_TYPES = (GATEWAY, HTTPROUTE, GATEWAY_POLICY)


def _edge(run: Capture, typ: str):
    """The single registration of ``typ`` inside the LoadBalancer component."""
    component = run.one(COMPONENT)
    found = [r for r in run.of_type(typ) if r.parent == component.urn]
    assert len(found) == 1, f"{run.stack}: expected one {typ} in the LoadBalancer, got {[r.name for r in found]}"
    return found[0]


def _edge_all(run: Capture, typ: str):
    component = run.one(COMPONENT)
    return [r for r in run.of_type(typ) if r.parent == component.urn]


# --------------------------------------------------------------------------- placement + wiring


def test_edge_resources_live_in_the_load_balancer_component(run: Capture):
    for typ in GCP_TYPES + K8S_TYPES:
        _edge(run, typ)  # exactly one each, parented by the component


def test_kubernetes_objects_use_the_cluster_provider_and_wait_for_the_namespace(run: Capture):
    namespace = run.one(NAMESPACE)
    providers = {r.urn for r in run.of_type(K8S_PROVIDER)}
    for typ in K8S_TYPES:
        obj = _edge(run, typ)
        assert obj.provider and obj.provider.rsplit("::", 1)[0] in providers, f"{typ} without the cluster's provider"
        assert obj.inputs["metadata"]["namespace"] == namespace.inputs["metadata"]["name"]
        assert namespace.urn in obj.dependencies, f"{typ} does not wait for the namespace"


def test_gateway_waits_for_the_certificate_map_entry(run: Capture):
    assert _edge(run, CERT_MAP_ENTRY).urn in _edge(run, GATEWAY).dependencies


# --------------------------------------------------------------------------- address + certificate


def test_static_ip_is_global_external_ipv4_and_used_by_the_gateway(run: Capture):
    address = _edge(run, ADDRESS)
    assert address.inputs["addressType"] == "EXTERNAL"
    assert address.inputs["ipVersion"] == "IPV4"
    gateway = _edge(run, GATEWAY)
    assert gateway.inputs["spec"]["addresses"] == [{"type": "NamedAddress", "value": address.inputs["name"]}]
    assert address.urn in gateway.dependencies


def test_managed_certificate_for_the_stack_domain_in_the_gateway_certmap(run: Capture, settings: StackSettings):
    domain = settings.config.load_balancer.domain
    cert = _edge(run, CERT)
    assert cert.inputs["managed"]["domains"] == [domain]
    assert not cert.inputs["managed"].get("dnsAuthorizations"), "load-balancer authorization expected"
    assert cert.inputs.get("scope", "DEFAULT") == "DEFAULT"
    cert_map = _edge(run, CERT_MAP)
    entry = _edge(run, CERT_MAP_ENTRY)
    assert entry.inputs["hostname"] == domain
    assert entry.inputs["map"] == cert_map.inputs["name"]
    assert entry.inputs["certificates"] == [
        f"projects/{settings.project}/locations/global/certificates/{cert.inputs['name']}"]
    gateway = _edge(run, GATEWAY)
    assert gateway.inputs["metadata"]["annotations"][lb.CERTMAP_ANNOTATION] == cert_map.inputs["name"]


# --------------------------------------------------------------------------- TLS


def test_ssl_policy_requires_tls12_and_is_attached_to_the_gateway(run: Capture, settings: StackSettings):
    policy = _edge(run, SSL_POLICY)
    assert policy.inputs["minTlsVersion"] == "TLS_1_2"
    assert policy.inputs["profile"] in ("MODERN", "RESTRICTED")
    assert policy.inputs["profile"] == settings.config.load_balancer.ssl_profile
    gateway = _edge(run, GATEWAY)
    attach = _edge(run, GATEWAY_POLICY)
    assert attach.inputs["apiVersion"] == "networking.gke.io/v1"
    assert attach.inputs["spec"]["default"]["sslPolicy"] == policy.inputs["name"]
    assert attach.inputs["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway.inputs["metadata"]["name"]}
    assert attach.inputs["metadata"]["namespace"] == gateway.inputs["metadata"]["namespace"]


# --------------------------------------------------------------------------- Gateway, HTTPS only


def test_gateway_is_the_global_external_managed_class_in_the_stack_namespace(run: Capture, settings: StackSettings):
    gateway = _edge(run, GATEWAY)
    assert gateway.inputs["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway.inputs["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    assert gateway.inputs["metadata"]["namespace"] == settings.names.namespace
    component = run.platform.load_balancer
    assert component.gateway_name == gateway.inputs["metadata"]["name"]


def test_listeners_are_https_443_and_http_80_only(run: Capture):
    listeners = _edge(run, GATEWAY).inputs["spec"]["listeners"]
    assert sorted((l["name"], l["protocol"], l["port"]) for l in listeners) == [
        ("http", "HTTP", 80), ("https", "HTTPS", 443)]
    https = [l["name"] for l in listeners if l["protocol"] == "HTTPS"]
    assert run.platform.load_balancer.https_section_name in https, \
        "the chart must bind files-api to the HTTPS listener"


def test_plain_http_only_redirects_to_https_301(run: Capture):
    gateway = _edge(run, GATEWAY)
    gateway_name = gateway.inputs["metadata"]["name"]
    http_listeners = {l["name"] for l in gateway.inputs["spec"]["listeners"] if l["protocol"] == "HTTP"}
    routes = run.of_type(HTTPROUTE)
    on_http = [r for r in routes
               if any(p["name"] == gateway_name and p.get("sectionName") in http_listeners
                      for p in r.inputs["spec"]["parentRefs"])]
    assert on_http, "no route on the http listener: plain HTTP would get 404 instead of a redirect"
    for route in routes:
        # a parentRef without sectionName attaches to every listener, http included
        assert all(p.get("sectionName") for p in route.inputs["spec"]["parentRefs"]), route.name
    for route in on_http:
        for rule in route.inputs["spec"]["rules"]:
            assert not rule.get("backendRefs"), f"{route.name} sends plain HTTP to a backend"
            assert rule["filters"] == [{"type": "RequestRedirect",
                                        "requestRedirect": {"scheme": "https", "statusCode": 301}}]


def test_stack_outputs_carry_the_ip_and_https_url(run: Capture, settings: StackSettings):
    domain = settings.config.load_balancer.domain
    assert run.outputs["url"] == f"https://{domain}"
    assert ipaddress.ip_address(run.outputs["load_balancer_ip"]).version == 4
    assert run.platform.load_balancer.domain == domain


# --------------------------------------------------------------------------- Cloud Armor


def _rules(run: Capture) -> list[dict]:
    return _edge(run, ARMOR).inputs["rules"]


def test_armor_policy_is_a_backend_policy(run: Capture):
    assert _edge(run, ARMOR).inputs["type"] == "CLOUD_ARMOR"


@pytest.mark.parametrize("rule_set", ["sqli-v33-stable", "xss-v33-stable"])
def test_armor_preconfigured_waf_rule_denies(run: Capture, settings: StackSettings, rule_set: str):
    armor = settings.config.load_balancer.armor
    matching = [r for r in _rules(run)
                if f"evaluatePreconfiguredWaf('{rule_set}'" in r["match"].get("expr", {}).get("expression", "")]
    assert len(matching) == 1, f"{rule_set} rule missing"
    rule = matching[0]
    assert rule["action"] == "deny(403)"
    assert f"'sensitivity': {armor.waf_sensitivity}" in rule["match"]["expr"]["expression"]
    assert bool(rule.get("preview", False)) == armor.waf_preview
    if run.stack == "prod":
        assert not rule.get("preview"), "prod must enforce the WAF rules, not only log them"


def test_armor_rate_based_ban_per_client_ip_from_config(run: Capture, settings: StackSettings):
    armor = settings.config.load_balancer.armor
    bans = [r for r in _rules(run) if r["action"] == "rate_based_ban"]
    assert len(bans) == 1
    ban = bans[0]
    assert ban["match"] == {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}
    options = ban["rateLimitOptions"]
    assert options["enforceOnKey"] == "IP"
    assert options["conformAction"] == "allow"
    assert options["exceedAction"] == "deny(429)"
    assert options["rateLimitThreshold"] == {"count": armor.rate_limit_requests,
                                             "intervalSec": armor.rate_limit_interval_sec}
    assert options["banDurationSec"] == armor.ban_duration_sec
    assert not ban.get("preview"), "the rate-based ban must be enforced"


def test_armor_rule_order_and_default_allow(run: Capture):
    rules = _rules(run)
    priorities = [r["priority"] for r in rules]
    assert len(set(priorities)) == len(priorities), "duplicate rule priorities"
    default = [r for r in rules if r["priority"] == lb.DEFAULT_RULE_PRIORITY]
    assert len(default) == 1
    assert default[0]["action"] == "allow"
    assert default[0]["match"] == {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}
    waf = max(r["priority"] for r in rules
              if "evaluatePreconfiguredWaf" in r["match"].get("expr", {}).get("expression", ""))
    ban = min(r["priority"] for r in rules if r["action"] == "rate_based_ban")
    assert waf < ban < lb.DEFAULT_RULE_PRIORITY, "WAF before rate ban before the default rule"


def test_armor_adaptive_protection_follows_config(run: Capture, settings: StackSettings):
    policy = _edge(run, ARMOR)
    config = policy.inputs.get("adaptiveProtectionConfig") or {}
    enabled = config.get("layer7DdosDefenseConfig", {}).get("enable", False)
    assert enabled == settings.config.load_balancer.armor.adaptive_protection
    if run.stack == "prod":
        assert enabled, "prod runs Adaptive Protection"


# --------------------------------------------------------------------------- names


def test_resource_names_derive_from_the_stack_prefix(run: Capture, settings: StackSettings):
    prefix = settings.names.prefix
    for typ in GCP_TYPES:
        name = _edge(run, typ).inputs["name"]
        assert name.startswith(f"{prefix}-"), f"{typ}: {name}"
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name), f"{typ}: {name} is not a valid GCE name"


# --------------------------------------------------------------------------- Output attributes (component alone)


class _AttrMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


def _resolved_attributes(settings: StackSettings) -> dict[str, Any]:
    """Run the component alone and resolve the Output attributes the chart and monitoring read."""
    pulumi.runtime.set_mocks(_AttrMocks(), project="print-platform", stack=settings.stack, preview=False)
    names = ["armor_policy_name", "ssl_policy_name", "certificate_map_name", "gateway_namespace", "url_map_name_regex"]
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        # IAP off: these mocks answer no data-source calls (the IAP audience needs the project number).
        config = settings.config.load_balancer.model_copy(update={"iap": lb.IapConfig()})
        component = lb.LoadBalancer("edge", config, lb.LoadBalancerContext(
            name_prefix=settings.names.prefix, namespace=settings.names.namespace, k8s_provider=k8s.Provider("k8s")))
        return pulumi.Output.all(*[getattr(component, n) for n in names]).apply(
            lambda values: resolved.update(zip(names, values)))

    program()
    assert set(resolved) == set(names), "the attributes never resolved"
    return resolved


def test_output_attributes_name_the_created_resources(settings: StackSettings):
    attrs = _resolved_attributes(settings)
    prefix = settings.names.prefix
    assert attrs["armor_policy_name"] == f"{prefix}-armor"
    assert attrs["ssl_policy_name"] == f"{prefix}-ssl"
    assert attrs["certificate_map_name"] == f"{prefix}-certmap"
    assert attrs["gateway_namespace"] == settings.names.namespace
    regex = re.compile(attrs["url_map_name_regex"])
    ns, gw = settings.names.namespace, "external"
    assert regex.fullmatch(f"gkegw1-l1bi-{ns}-{gw}-2jfqxrkgd0fm")
    assert not regex.fullmatch(f"gkegw1-l1bi-other-{gw}-2jfqxrkgd0fm")
    assert not regex.fullmatch(f"gkegw1-l1bi-{ns}-internal-2jfqxrkgd0fm")


def test_url_map_regex_refuses_names_gke_would_truncate():
    with pytest.raises(lb.LoadBalancerArgsError, match="namespace/gateway_name"):
        lb.url_map_name_regex("a" * 30, "b" * 9)


# --------------------------------------------------------------------------- Args validation


def _valid_kwargs() -> dict:
    return dict(
        name_prefix="print-platform-dev",
        namespace="print-platform",
        k8s_provider=_DummyProvider(),
    )


class _DummyProvider(pulumi.ProviderResource):
    def __init__(self) -> None:  # not registered: Args validation only checks the type
        pass


def test_valid_args_construct():
    lb.LoadBalancerContext(**_valid_kwargs())


@pytest.mark.parametrize("field_name, value, fragment", [
    ("name_prefix", "Print_Platform", "name_prefix"),
    ("name_prefix", "p" * 50, "name_prefix"),
    ("namespace", "Not A Namespace", "namespace"),
    ("gateway_name", "gw.", "gateway_name"),
    ("k8s_provider", object(), "k8s_provider"),
])
def test_bad_args_name_the_field(field_name, value, fragment):
    kwargs = _valid_kwargs()
    kwargs[field_name] = value
    with pytest.raises(lb.LoadBalancerArgsError, match=rf"^loadbalancer: {fragment}: "):
        lb.LoadBalancerContext(**kwargs)


@pytest.mark.parametrize("key, value", [
    ("domain", "Files.Example.com"),
    ("domain", "*.example.com"),
    ("domain", "localhost"),
    ("sslProfile", "COMPATIBLE"),
    ("armor", {"rateLimitRequests": 1}),
])
def test_bad_config_names_the_key(key, value):
    """The load balancer's config model (the component's first argument) refuses the value, naming the key."""
    from pydantic import ValidationError

    config = {"domain": "files.example.com",
              "armor": {"rateLimitRequests": 100, "rateLimitIntervalSec": 60, "banDurationSec": 300}}
    config[key] = value
    with pytest.raises(ValidationError) as info:
        lb.LoadBalancerConfig.model_validate(config)
    assert {e["loc"][0] for e in info.value.errors()} == {key}


@pytest.mark.parametrize("field_name, value", [
    ("rate_limit_requests", 0),
    ("rate_limit_requests", 10_001),
    ("rate_limit_requests", True),
    ("rate_limit_interval_sec", 45),
    ("ban_duration_sec", 0),
    ("waf_sensitivity", 0),
    ("waf_sensitivity", 5),
])
def test_bad_armor_args_name_the_field(field_name, value):
    kwargs = dict(rate_limit_requests=100, rate_limit_interval_sec=60, ban_duration_sec=300)
    kwargs[field_name] = value
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        lb.ArmorConfig(**kwargs)
    [error] = info.value.errors()
    assert error["loc"] == (field_name,)
    assert repr(value) in error["msg"]


IAP_MEMBER = "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember"


def test_iap_members_are_granted_the_accessor_role_on_this_host_only(run: Capture, settings: StackSettings):
    """prod's plan grants roles/iap.httpsResourceAccessor to exactly the configured members,
    conditioned on the stack's host; a stack without IAP grants nobody."""
    grants = run.of_type(IAP_MEMBER)
    iap = settings.config.load_balancer.iap
    if not iap.enabled:
        assert grants == []
        return
    assert sorted(g.inputs["member"] for g in grants) == sorted(iap.members) and grants
    for grant in grants:
        assert grant.inputs["role"] == "roles/iap.httpsResourceAccessor"
        assert grant.inputs["project"] == settings.project
        assert grant.inputs["condition"]["expression"] == f'request.host == "{settings.config.load_balancer.domain}"'
        assert grant.parent.endswith("print-platform:edge:LoadBalancer::edge")
    no_basic = [g for g in run.resources if "iam" in g.type.lower() and g.inputs.get("role") in
                ("roles/iap.admin", "roles/owner", "roles/editor")]
    assert not no_basic


def test_iap_audience_binds_the_project_number(run: Capture, settings: StackSettings):
    """files-api's IAP_AUDIENCE: this project's global backend services (the id is the
    Gateway controller's, created after the release)."""
    from tools.mock_runtime import _project_number

    values = next(r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "files-api").inputs["values"]
    if settings.config.load_balancer.iap.enabled:
        assert values["app"]["iapAudience"] == (
            f"/projects/{_project_number(settings.project)}/global/backendServices/*")
        assert values["route"]["iap"]["enabled"] is True
    else:
        assert values["app"]["iapAudience"] == "" and values["route"]["iap"]["enabled"] is False


def test_iap_helpers_reject_bad_input():
    assert lb.iap_host_condition("files.example.com") == 'request.host == "files.example.com"'
    with pytest.raises(lb.LoadBalancerArgsError, match="domain"):
        lb.iap_host_condition('x" || true || "')
    assert lb.iap_audience_pattern(123) == "/projects/123/global/backendServices/*"
    with pytest.raises(lb.LoadBalancerArgsError, match="project_number"):
        lb.iap_audience_pattern("my-project")
