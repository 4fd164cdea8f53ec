"""LoadBalancer component under Pulumi mocks: every edge invariant, per stack."""
from __future__ import annotations

import re

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra import loadbalancer as lb


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration; returns the inputs plus realistic provider outputs."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == "gcp:compute/globalAddress:GlobalAddress":
            outputs["address"] = "203.0.113.10"
        if args.typ == "gcp:certificatemanager/certificate:Certificate":
            outputs["id"] = f"projects/p/locations/global/certificates/{args.inputs['name']}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


STACKS = ["dev", "prod"]


def _args(stack: str, provider: pulumi.ProviderResource) -> lb.LoadBalancerArgs:
    return lb.LoadBalancerArgs(
        name_prefix=f"print-platform-{stack}",
        domain=f"files.{stack}.example.com",
        namespace="print-platform",
        k8s_provider=provider,
        armor=lb.CloudArmorArgs(rate_limit_requests=600, rate_limit_interval_sec=60, ban_duration_sec=600),
    )


@pytest.fixture(params=STACKS)
def registered(request):
    """Run the component for one stack; return (stack, recorded registrations, component)."""
    stack = request.param
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="print-platform", stack=stack, preview=False)
    holder = {}

    @pulumi.runtime.test
    def program():
        provider = k8s.Provider("k8s")
        holder["lb"] = lb.LoadBalancer("edge", _args(stack, provider))
        return holder["lb"].ip_address

    program()
    return stack, mocks.resources, holder["lb"]


def _one(resources, typ, kind=None):
    found = [r for r in resources if r.typ == typ and (kind is None or r.inputs.get("kind") == kind)]
    assert len(found) == 1, f"expected one {typ} {kind or ''}, got {[r.name for r in found]}"
    return found[0]


def test_static_ip_is_global_external(registered):
    _, res, _ = registered
    address = _one(res, "gcp:compute/globalAddress:GlobalAddress")
    assert address.inputs["addressType"] == "EXTERNAL"
    assert address.inputs["ipVersion"] == "IPV4"


def test_ssl_policy_tls12(registered):
    _, res, _ = registered
    policy = _one(res, "gcp:compute/sSLPolicy:SSLPolicy")
    assert policy.inputs["minTlsVersion"] == "TLS_1_2"
    assert policy.inputs["profile"] in ("MODERN", "RESTRICTED")


def test_armor_waf_and_rate_ban(registered):
    _, res, _ = registered
    policy = _one(res, "gcp:compute/securityPolicy:SecurityPolicy")
    rules = policy.inputs["rules"]
    exprs = [r["match"].get("expr", {}).get("expression", "") for r in rules]
    for rule_set in ("sqli-v33-stable", "xss-v33-stable"):
        assert any(f"evaluatePreconfiguredWaf('{rule_set}'" in e for e in exprs), rule_set
    ban = [r for r in rules if r["action"] == "rate_based_ban"]
    assert len(ban) == 1
    print(ban[0])
