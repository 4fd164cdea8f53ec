"""The edge (infra/loadbalancer.py) under Pulumi mocks, once per real stack file.

Each test reads the recorded registrations after the program has finished (no
assertion lives inside an ``apply``), and compares them with the stack's own
settings, so changing a stack file or breaking the component fails a test.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra import loadbalancer as lb
from infra.settings import StackSettings, load_stack_settings

STACKS = ["dev", "prod"]

ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
CERT = "gcp:certificatemanager/certificate:Certificate"
CERT_MAP = "gcp:certificatemanager/certificateMap:CertificateMap"
CERT_MAP_ENTRY = "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry"
SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
ARMOR = "gcp:compute/securityPolicy:SecurityPolicy"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
HTTPROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
GATEWAY_POLICY = "kubernetes:networking.gke.io/v1:GCPGatewayPolicy"


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration; returns its inputs plus what the provider would compute."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == ADDRESS:
            outputs["address"] = "203.0.113.10"
        if args.typ == CERT:
            outputs["id"] = f"projects/{self.project}/locations/global/certificates/{args.inputs['name']}"
            return outputs["id"], outputs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


def lb_args(settings: StackSettings, provider: pulumi.ProviderResource) -> lb.LoadBalancerArgs:
    """The stack's settings as LoadBalancerArgs (what infra/program.py passes)."""
    edge = settings.config.load_balancer
    armor = edge.armor
    return lb.LoadBalancerArgs(
        name_prefix=settings.names.prefix,
        domain=edge.domain,
        namespace=settings.names.namespace,
        k8s_provider=provider,
        project=settings.project,
        ssl_profile=edge.ssl_profile,
        armor=lb.CloudArmorArgs(
            rate_limit_requests=armor.rate_limit_requests,
            rate_limit_interval_sec=armor.rate_limit_interval_sec,
            ban_duration_sec=armor.ban_duration_sec,
            waf_sensitivity=armor.waf_sensitivity,
            waf_preview=armor.waf_preview,
            adaptive_protection=armor.adaptive_protection,
        ),
    )


@dataclass
class Run:
    """One stack's recorded registrations and the component's resolved attributes."""

    stack: str
    settings: StackSettings
    resources: list[pulumi.runtime.MockResourceArgs]
    attrs: dict[str, Any] = field(default_factory=dict)

    def all(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        found = self.all(typ)
        assert len(found) == 1, f"{self.stack}: expected exactly one {typ}, got {[r.name for r in found]}"
        return found[0]


def run_component(stack: str) -> Run:
    settings = load_stack_settings(stack)
    mocks = RecordingMocks(settings.project)
    pulumi.runtime.set_mocks(mocks, project="print-platform", stack=stack, preview=False)
    run = Run(stack, settings, mocks.resources)

    @pulumi.runtime.test
    def program():
        component = lb.LoadBalancer("edge", lb_args(settings, k8s.Provider("k8s")))
        names = ["ip_address", "url", "domain", "gateway_name", "gateway_namespace", "https_section_name",
                 "armor_policy_name", "ssl_policy_name", "certificate_map_name", "url_map_name_regex"]
        return pulumi.Output.all(*[getattr(component, n) for n in names]).apply(
            lambda values: run.attrs.update(zip(names, values)))

    program()
    assert run.attrs, "the component's attributes never resolved"
    return run


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> Run:
    return run_component(request.param)


# --------------------------------------------------------------------------- address + certificate


def test_static_ip_is_global_external_ipv4_and_used_by_the_gateway(run):
    address = run.one(ADDRESS)
    assert address.inputs["addressType"] == "EXTERNAL"
    assert address.inputs["ipVersion"] == "IPV4"
    gateway = run.one(GATEWAY)
    assert gateway.inputs["spec"]["addresses"] == [{"type": "NamedAddress", "value": address.inputs["name"]}]
    assert run.attrs["ip_address"] == "203.0.113.10"


def test_managed_certificate_for_the_stack_domain_in_the_gateway_certmap(run):
    domain = run.settings.config.load_balancer.domain
    cert = run.one(CERT)
    assert cert.inputs["managed"]["domains"] == [domain]
    assert not cert.inputs["managed"].get("dnsAuthorizations"), "load-balancer authorization expected"
    assert cert.inputs.get("scope", "DEFAULT") == "DEFAULT"
    cert_map = run.one(CERT_MAP)
    entry = run.one(CERT_MAP_ENTRY)
    assert entry.inputs["hostname"] == domain
    assert entry.inputs["map"] == cert_map.inputs["name"]
    assert entry.inputs["certificates"] == [f"projects/{run.settings.project}/locations/global/certificates/{cert.inputs['name']}"]
    gateway = run.one(GATEWAY)
    assert gateway.inputs["metadata"]["annotations"][lb.CERTMAP_ANNOTATION] == cert_map.inputs["name"]


# --------------------------------------------------------------------------- TLS


def test_ssl_policy_requires_tls12_and_is_attached_to_the_gateway(run):
    policy = run.one(SSL_POLICY)
    assert policy.inputs["minTlsVersion"] == "TLS_1_2"
    assert policy.inputs["profile"] in ("MODERN", "RESTRICTED")
    assert policy.inputs["profile"] == run.settings.config.load_balancer.ssl_profile
    gateway = run.one(GATEWAY)
    attach = run.one(GATEWAY_POLICY)
    assert attach.inputs["apiVersion"] == "networking.gke.io/v1"
    assert attach.inputs["spec"]["default"]["sslPolicy"] == policy.inputs["name"]
    assert attach.inputs["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway.inputs["metadata"]["name"]}
    assert attach.inputs["metadata"]["namespace"] == gateway.inputs["metadata"]["namespace"]


# --------------------------------------------------------------------------- Gateway, HTTPS only


def test_gateway_is_the_global_external_managed_class_in_the_stack_namespace(run):
    gateway = run.one(GATEWAY)
    assert gateway.inputs["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway.inputs["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    assert gateway.inputs["metadata"]["namespace"] == run.settings.names.namespace
    assert run.attrs["gateway_name"] == gateway.inputs["metadata"]["name"]
    assert run.attrs["gateway_namespace"] == run.settings.names.namespace


def test_listeners_are_https_443_and_http_80_only(run):
    listeners = run.one(GATEWAY).inputs["spec"]["listeners"]
    assert sorted((l["name"], l["protocol"], l["port"]) for l in listeners) == [
        ("http", "HTTP", 80), ("https", "HTTPS", 443)]
    https = [l["name"] for l in listeners if l["protocol"] == "HTTPS"]
    assert run.attrs["https_section_name"] in https, "the chart must bind files-api to the HTTPS listener"


def test_plain_http_only_redirects_to_https_301(run):
    gateway_name = run.one(GATEWAY).inputs["metadata"]["name"]
    http_listeners = {l["name"] for l in run.one(GATEWAY).inputs["spec"]["listeners"] if l["protocol"] == "HTTP"}
    routes = run.all(HTTPROUTE)
    on_http = [r for r in routes
               if any(p["name"] == gateway_name and p.get("sectionName") in http_listeners
                      for p in r.inputs["spec"]["parentRefs"])]
    assert on_http, "no route on the http listener: plain HTTP would get 404 instead of a redirect"
    for route in routes:
        # a route without sectionName would attach to every listener, http included
        assert all(p.get("sectionName") for p in route.inputs["spec"]["parentRefs"]), route.name
    for route in on_http:
        for rule in route.inputs["spec"]["rules"]:
            assert not rule.get("backendRefs"), f"{route.name} sends plain HTTP to a backend"
            assert rule["filters"] == [{"type": "RequestRedirect",
                                        "requestRedirect": {"scheme": "https", "statusCode": 301}}]


def test_url_and_domain_outputs(run):
    domain = run.settings.config.load_balancer.domain
    assert run.attrs["url"] == f"https://{domain}"
    assert run.attrs["domain"] == domain


# --------------------------------------------------------------------------- Cloud Armor


def _rules(run):
    return run.one(ARMOR).inputs["rules"]


def test_armor_policy_is_a_backend_policy_exposed_by_name(run):
    policy = run.one(ARMOR)
    assert policy.inputs["type"] == "CLOUD_ARMOR"
    assert run.attrs["armor_policy_name"] == policy.inputs["name"]


@pytest.mark.parametrize("rule_set", ["sqli-v33-stable", "xss-v33-stable"])
def test_armor_preconfigured_waf_rule_denies(run, rule_set):
    armor = run.settings.config.load_balancer.armor
    matching = [r for r in _rules(run)
                if f"evaluatePreconfiguredWaf('{rule_set}'" in r["match"].get("expr", {}).get("expression", "")]
    assert len(matching) == 1, f"{rule_set} rule missing"
    rule = matching[0]
    assert rule["action"] == "deny(403)"
    assert f"'sensitivity': {armor.waf_sensitivity}" in rule["match"]["expr"]["expression"]
    assert bool(rule.get("preview", False)) == armor.waf_preview
    if run.stack == "prod":
        assert not rule.get("preview"), "prod must enforce the WAF rules, not only log them"


def test_armor_rate_based_ban_per_client_ip_from_config(run):
    armor = run.settings.config.load_balancer.armor
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


def test_armor_rule_order_and_default_allow(run):
    rules = _rules(run)
    priorities = [r["priority"] for r in rules]
    assert len(set(priorities)) == len(priorities), "duplicate rule priorities"
    default = [r for r in rules if r["priority"] == lb.DEFAULT_RULE_PRIORITY]
    assert len(default) == 1
    assert default[0]["action"] == "allow"
    assert default[0]["match"] == {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}
    waf = max(r["priority"] for r in rules if "evaluatePreconfiguredWaf" in r["match"].get("expr", {}).get("expression", ""))
    ban = min(r["priority"] for r in rules if r["action"] == "rate_based_ban")
    assert waf < ban < lb.DEFAULT_RULE_PRIORITY, "WAF before rate ban before the default rule"


def test_armor_adaptive_protection_follows_config(run):
    policy = run.one(ARMOR)
    enabled = (policy.inputs.get("adaptiveProtectionConfig") or {}).get("layer7DdosDefenseConfig", {}).get("enable", False)
    assert enabled == run.settings.config.load_balancer.armor.adaptive_protection
    if run.stack == "prod":
        assert enabled, "prod runs Adaptive Protection"


# --------------------------------------------------------------------------- names + monitoring seam


def test_resource_names_derive_from_the_stack_prefix(run):
    prefix = run.settings.names.prefix
    for typ in (ADDRESS, CERT, CERT_MAP, CERT_MAP_ENTRY, SSL_POLICY, ARMOR):
        name = run.one(typ).inputs["name"]
        assert name.startswith(f"{prefix}-"), f"{typ}: {name}"
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name), f"{typ}: {name} is not a valid GCE name"


def test_url_map_regex_matches_the_gke_generated_name(run):
    regex = re.compile(run.attrs["url_map_name_regex"])
    ns, gw = run.settings.names.namespace, run.attrs["gateway_name"]
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
        domain="files.example.com",
        namespace="print-platform",
        k8s_provider=_DummyProvider(),
        armor=lb.CloudArmorArgs(rate_limit_requests=100, rate_limit_interval_sec=60, ban_duration_sec=300),
    )


class _DummyProvider(pulumi.ProviderResource):
    def __init__(self) -> None:  # not registered: Args validation only checks the type
        pass


def test_valid_args_construct():
    lb.LoadBalancerArgs(**_valid_kwargs())


@pytest.mark.parametrize("field_name, value, fragment", [
    ("domain", "Files.Example.com", "domain"),
    ("domain", "*.example.com", "domain"),
    ("domain", "localhost", "domain"),
    ("name_prefix", "Print_Platform", "name_prefix"),
    ("name_prefix", "p" * 50, "name_prefix"),
    ("namespace", "Not A Namespace", "namespace"),
    ("gateway_name", "gw.", "gateway_name"),
    ("ssl_profile", "COMPATIBLE", "ssl_profile"),
    ("k8s_provider", object(), "k8s_provider"),
    ("armor", {"rate_limit_requests": 1}, "armor"),
])
def test_bad_args_name_the_field(field_name, value, fragment):
    kwargs = _valid_kwargs()
    kwargs[field_name] = value
    with pytest.raises(lb.LoadBalancerArgsError, match=rf"^loadbalancer: {fragment}: "):
        lb.LoadBalancerArgs(**kwargs)


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
    with pytest.raises(lb.LoadBalancerArgsError, match=rf"^loadbalancer: armor\.{field_name}: .*{value!r}"):
        lb.CloudArmorArgs(**kwargs)
