"""The pack through pulumi_policy's own analyzer servicer, fed gRPC requests as the engine sends them.

This pins the property-name contract (the engine's camelCase input names arrive unchanged in
``args.props``), the enforcement levels and config schemas the CLI sees, policy config
(``pulumi preview --policy-pack-config``) and unknown values during a preview. It also runs
``policy/__main__.py`` the way the CLI does and checks ``PulumiPolicy.yaml``.
"""
from __future__ import annotations

import runpy

import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

from conftest import POLICY_DIR, pack

#: How the engine encodes a value unknown during preview (pulumi/sdk/go/common/resource/plugin/rpc.go).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
MANDATORY = proto.EnforcementLevel.Value("MANDATORY")
ADVISORY = proto.EnforcementLevel.Value("ADVISORY")


def servicer() -> _PolicyAnalyzerServicer:
    return _PolicyAnalyzerServicer("print-platform", "0.1.0", pack.POLICIES, EnforcementLevel.MANDATORY)


def analyze(svc, rtype: str, props: dict, *, stack: str = "prod", name: str = "res", protect: bool = True):
    return analyze_resource(svc, {"type": rtype, "inputs": props, "name": name, "protect": protect,
                                  "urn": f"urn:pulumi:{stack}::print-platform::{rtype}::{name}"})


def analyze_resource(svc, resource: dict):
    """Diagnostics for one resource of a preview document (``urn``, ``type``, ``name``, ``protect``, ``inputs``)."""
    struct = struct_pb2.Struct()
    json_format.ParseDict(resource["inputs"], struct)
    request = proto.AnalyzeRequest(
        type=resource["type"], properties=struct, urn=resource["urn"], name=resource["name"],
        options=proto.AnalyzerResourceOptions(protect=bool(resource["protect"])))
    return svc.Analyze(request, None).diagnostics


def test_analyzer_info_lists_every_policy_with_its_level_and_config():
    info = servicer().GetAnalyzerInfo(None, None)
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert set(levels) == {p.name for p in pack.POLICIES}
    assert levels["ssl-policy-modern-profile"] == ADVISORY
    assert {n for n, lvl in levels.items() if lvl == MANDATORY} == set(levels) - {"ssl-policy-modern-profile"}
    schema = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    assert "requireDeletionProtection" in schema["cloudsql-deletion-protection"]["properties"]
    assert schema["stateful-resources-protected"]["properties"]["protectedStacks"]["default"] == ["prod"]


def test_engine_props_are_camel_case_and_reach_the_policy():
    svc = servicer()
    good = {"name": "b", "uniformBucketLevelAccess": True, "publicAccessPrevention": "enforced"}
    assert list(analyze(svc, pack.BUCKET, good)) == []
    diags = analyze(svc, pack.BUCKET, {**good, "uniformBucketLevelAccess": False}, name="uploads")
    assert [(d.policyName, d.enforcementLevel) for d in diags] == [
        ("gcs-bucket-uniform-access-public-prevention", MANDATORY)]
    assert "gcp:storage/bucket:Bucket 'uploads': uniformBucketLevelAccess must be true" in diags[0].message
    # snake_case keys (the Python SDK's argument names) are not what the engine sends: they do not count.
    snake = analyze(svc, pack.BUCKET, {"uniform_bucket_level_access": True, "public_access_prevention": "enforced"})
    assert {d.policyName for d in snake} == {"gcs-bucket-uniform-access-public-prevention"}


def test_policy_config_makes_dev_require_deletion_protection():
    svc = servicer()
    cluster = {"enableAutopilot": True, "deletionProtection": False,
               "privateClusterConfig": {"enablePrivateNodes": True},
               "masterAuthorizedNetworksConfig": {"cidrBlocks": []}, "releaseChannel": {"channel": "REGULAR"}}
    assert list(analyze(svc, pack.GKE_CLUSTER, cluster, stack="dev", protect=False)) == []
    assert {d.policyName for d in analyze(svc, pack.GKE_CLUSTER, cluster, stack="prod", protect=True)} == {
        "gke-deletion-protection"}
    config = struct_pb2.Struct()
    config.update({"requireDeletionProtection": True})
    svc.Configure(proto.ConfigureAnalyzerRequest(policyConfig={
        name: proto.PolicyConfig(enforcementLevel=MANDATORY, properties=config)
        for name in ("gke-deletion-protection", "stateful-resources-protected")}), None)
    assert {d.policyName for d in analyze(svc, pack.GKE_CLUSTER, cluster, stack="dev", protect=False)} == {
        "gke-deletion-protection", "stateful-resources-protected"}


def test_unknown_value_during_preview_is_not_a_violation():
    """An input computed from a resource not created yet: "can't run during preview", re-checked at update."""
    diags = analyze(servicer(), "gcp:storage/bucketIAMMember:BucketIAMMember",
                    {"bucket": "b", "role": "roles/storage.objectViewer", "member": UNKNOWN})
    messages = [d.message for d in diags]
    assert messages and all("can't run policy" in m for m in messages), messages


def test_entrypoint_builds_the_pack(monkeypatch, capsys):
    """``policy/__main__.py`` as the CLI runs it: the pack builds, serves on loopback, stops on interrupt."""
    import pulumi_policy.policy as impl

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(impl.time, "sleep", interrupt)
    monkeypatch.syspath_prepend(str(POLICY_DIR))
    runpy.run_path(str(POLICY_DIR), run_name="__main__")
    assert capsys.readouterr().out.strip().isdigit()  # the port handed to the engine


def test_pulumi_policy_yaml_uses_the_uv_toolchain():
    doc = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"] == {"name": "python", "options": {"toolchain": "uv", "virtualenv": ".venv"}}
    assert doc["description"]
