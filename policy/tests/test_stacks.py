"""Every policy over every resource of the real offline preview of both stacks: no mandatory violation.

The documents come from ``python -m tools.preview --stack <stack> --format json`` run with the
*program's* virtualenv (pulumi-gcp, protobuf 6), not this project's: ``PREVIEW_PYTHON`` when set
(tests/test_policy_pack.py passes the main suite's interpreter), else ``<repo>/.venv/bin/python``.
Without either the tests skip, unless ``POLICY_REQUIRE_PREVIEW=1`` (set by the main suite) makes
that a failure.

Key mapping: none is needed. The preview's ``inputs`` are the property map the engine receives
(tools/mock_runtime.py: camelCase names, ``"[secret]"`` for secrets), which is what the engine
hands the analyzer as ``args.props``; ``protect`` maps to ``args.opts.protect``; the ``urn``
carries the stack name the stack-aware policies read. ``test_inputs_are_camel_case`` pins that.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import pytest

from conftest import is_mandatory, make_args, pack, run_policy

REPO = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def _preview_python() -> Optional[str]:
    explicit = os.environ.get("PREVIEW_PYTHON")
    if explicit:
        return explicit
    default = REPO / ".venv" / "bin" / "python"
    return str(default) if default.exists() else None


def _preview(python: str, stack: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")}
    proc = subprocess.run([python, "-m", "tools.preview", "--stack", stack, "--format", "json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"preview of {stack} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def documents() -> dict[str, dict]:
    python = _preview_python()
    if python is None:
        if os.environ.get("POLICY_REQUIRE_PREVIEW") == "1":
            pytest.fail("no interpreter for the offline preview (PREVIEW_PYTHON or .venv/bin/python)")
        pytest.skip("no program virtualenv for the offline preview (run `make setup` or set PREVIEW_PYTHON)")
    with ThreadPoolExecutor(max_workers=len(STACKS)) as pool:
        docs = dict(zip(STACKS, pool.map(lambda s: _preview(python, s), STACKS), strict=True))
    for stack, doc in docs.items():
        assert doc["stack"] == stack
    return docs


def evaluate(doc: dict, config: Optional[dict[str, Any]] = None) -> list[tuple[str, str, str]]:
    """``(policy, level, message)`` of every violation of every policy over every resource of ``doc``."""
    violations = []
    for resource in doc["resources"]:
        args = make_args(resource["type"], resource["inputs"], name=resource["name"],
                         urn=resource["urn"], protect=bool(resource["protect"]),
                         config=(config or {}))
        for policy in pack.POLICIES:
            for message in run_policy(policy, args):
                violations.append((policy.name, "mandatory" if is_mandatory(policy) else "advisory", message))
    return violations


@pytest.mark.parametrize("stack", STACKS)
def test_no_mandatory_violation(documents, stack):
    violations = evaluate(documents[stack])
    mandatory = [v for v in violations if v[1] == "mandatory"]
    assert mandatory == [], "\n".join(f"[{p}] {m}" for p, _, m in mandatory)
    for policy, level, message in violations:  # advisory: shown, allowed
        print(f"{stack}: {level} [{policy}] {message}")


@pytest.mark.parametrize("stack", STACKS)
def test_the_rules_have_something_to_check(documents, stack):
    """The stacks contain the resource types the rules are about (the zero above is not vacuous)."""
    types = {r["type"] for r in documents[stack]["resources"]}
    for rtype in (pack.BUCKET, pack.SQL_INSTANCE, pack.GKE_CLUSTER, pack.SSL_POLICY, pack.SUBSCRIPTION,
                  pack.FIREWALL, "gcp:projects/iAMMember:IAMMember", "gcp:storage/bucketIAMMember:BucketIAMMember"):
        assert rtype in types, rtype


def test_inputs_are_camel_case(documents):
    """The preview's inputs use the engine's camelCase names, the ones the policies read."""
    for stack, doc in documents.items():
        by_type = {r["type"]: r["inputs"] for r in doc["resources"]}
        assert "uniformBucketLevelAccess" in by_type[pack.BUCKET], stack
        assert "ipv4Enabled" in by_type[pack.SQL_INSTANCE]["settings"]["ipConfiguration"], stack
        assert "enablePrivateNodes" in by_type[pack.GKE_CLUSTER]["privateClusterConfig"], stack
        assert "minTlsVersion" in by_type[pack.SSL_POLICY], stack
        for resource in doc["resources"]:
            if resource["type"].startswith("gcp:"):
                snake = [k for k in resource["inputs"] if "_" in k]
                assert snake == [], (resource["urn"], snake)


def _mutated(doc: dict, rtype: str, name: str, change) -> dict:
    out = copy.deepcopy(doc)
    matches = [r for r in out["resources"] if r["type"] == rtype and r["name"] == name]
    assert len(matches) == 1, (rtype, name)
    change(matches[0])
    return out


def test_a_broken_prod_resource_is_caught(documents):
    """The same evaluation flags a regression in the real documents (one mutation per rule family)."""
    prod = documents["prod"]
    cases = [
        (pack.BUCKET, "uploads", lambda r: r["inputs"].update(publicAccessPrevention="inherited"),
         "gcs-bucket-uniform-access-public-prevention"),
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "extractor-bucket-storage.objectViewer",
         lambda r: r["inputs"].update(member="allUsers"), "iam-no-public-members"),
        (pack.SQL_INSTANCE, "postgres",
         lambda r: r["inputs"]["settings"]["ipConfiguration"].update(ipv4Enabled=True), "cloudsql-private-ip-ssl"),
        (pack.SQL_INSTANCE, "postgres", lambda r: r.update(protect=False), "stateful-resources-protected"),
        (pack.GKE_CLUSTER, "cluster",
         lambda r: r["inputs"]["masterAuthorizedNetworksConfig"]["cidrBlocks"].append({"cidrBlock": "0.0.0.0/0"}),
         "gke-cluster-security"),
        (pack.SUBSCRIPTION, "extractor", lambda r: r["inputs"].pop("deadLetterPolicy"),
         "pubsub-subscription-dead-letter"),
    ]
    for rtype, name, change, policy in cases:
        found = [v for v in evaluate(_mutated(prod, rtype, name, change)) if v[1] == "mandatory"]
        assert [v[0] for v in found] == [policy], (policy, found)
        assert f"'{name}'" in found[0][2]


def test_dev_would_fail_the_prod_protection_rules(documents):
    """dev is unprotected by design; the stack-aware rules fire when dev is held to prod's bar."""
    violations = evaluate(documents["dev"], config={"requireDeletionProtection": True})
    fired = {v[0] for v in violations if v[1] == "mandatory"}
    assert fired == {"cloudsql-deletion-protection", "gke-deletion-protection", "stateful-resources-protected"}


@pytest.mark.parametrize("stack", STACKS)
def test_no_mandatory_violation_through_the_analyzer(documents, stack):
    """The same, with every resource sent as an engine ``AnalyzeRequest`` (gRPC struct, pulumi_policy's
    deserialisation and unknown-checking proxies over nested blocks and lists)."""
    from test_analyzer import MANDATORY, analyze_resource, servicer

    svc = servicer()
    diagnostics = [d for r in documents[stack]["resources"] for d in analyze_resource(svc, r)]
    mandatory = [f"[{d.policyName}] {d.message}" for d in diagnostics if d.enforcementLevel == MANDATORY]
    assert mandatory == []
    prod_sql = [r for r in documents[stack]["resources"] if r["type"] == pack.SQL_INSTANCE][0]
    broken = copy.deepcopy(prod_sql)
    broken["inputs"]["settings"]["ipConfiguration"]["sslMode"] = "ALLOW_UNENCRYPTED_AND_ENCRYPTED"
    assert [d.policyName for d in analyze_resource(svc, broken)] == ["cloudsql-private-ip-ssl"]
