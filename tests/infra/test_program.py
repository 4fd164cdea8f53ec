"""Whole-program invariants per stack: protection, outputs, and the offline preview document."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import SERVICES, StackSettings
from tools import preview
from tools.mock_runtime import Capture, run_stack

ROOT = Path(__file__).resolve().parents[2]
#: The stateful resources prod protects (type, logical name).
STATEFUL = {
    ("gcp:container/cluster:Cluster", "cluster"),
    ("gcp:sql/databaseInstance:DatabaseInstance", "postgres"),
    ("gcp:sql/database:Database", "app"),
    ("gcp:storage/bucket:Bucket", "uploads"),
}
REQUIRED_OUTPUTS = {
    "cluster_name", "kubeconfig", "load_balancer_ip", "url", "uploads_bucket", "uploads_topic",
    "dead_letter_topic", "extractor_subscription", "database_connection_name", "service_account_emails",
}


def test_stateful_resources_are_protected_in_prod_only(run: Capture, stack: str):
    protected = {(r.type, r.name) for r in run.resources if r.protect}
    if stack == "prod":
        assert STATEFUL <= protected
    else:
        assert protected == set()


def test_stack_outputs(run: Capture, settings: StackSettings):
    outputs = run.outputs
    assert REQUIRED_OUTPUTS <= set(outputs)
    assert outputs["kubeconfig"] == "[secret]"
    n = settings.names
    assert outputs["cluster_name"] == n.cluster
    assert outputs["uploads_bucket"] == n.uploads_bucket
    assert outputs["uploads_topic"] == n.uploads_topic
    assert outputs["dead_letter_topic"] == n.dead_letter_topic
    assert outputs["extractor_subscription"] == n.extractor_subscription
    assert outputs["database_connection_name"] == f"{settings.project}:{settings.region}:{n.sql_instance}"
    assert outputs["url"] == f"https://{settings.config.load_balancer.domain}"
    assert set(outputs["service_account_emails"]) == {*SERVICES, "reconciler"}
    assert outputs["load_balancer_ip"]


def test_every_resource_has_a_parent_component(run: Capture):
    """One component per concern: nothing hangs directly off the stack except components."""
    stack_urn = next(r.urn for r in run.registrations if r.type == "pulumi:pulumi:Stack")
    for r in run.resources:
        if r.parent == stack_urn:
            assert not r.custom, f"{r.urn} is a cloud resource outside any component"


def test_preview_json_document_shape(run: Capture):
    doc = json.loads(preview.render_json(run))
    # The shape and key order the issue documents.
    assert list(doc) == ["stack", "resources", "outputs"]
    assert doc["stack"] == run.stack
    urns = [r["urn"] for r in doc["resources"]]
    assert urns == sorted(urns) and len(urns) == len(set(urns))
    assert len(urns) == len(run.registrations)
    for r in doc["resources"]:
        assert list(r) == ["urn", "type", "name", "parent", "provider", "protect", "dependencies", "inputs"]
        assert isinstance(r["protect"], bool) and isinstance(r["dependencies"], list)
        assert isinstance(r["inputs"], dict)
    # Inputs as the engine receives them: camelCase property names, resolved values.
    cluster = next(r for r in doc["resources"] if r["type"] == "gcp:container/cluster:Cluster")
    assert cluster["inputs"]["enableAutopilot"] is True
    assert cluster["inputs"]["network"].startswith("projects/")
    assert set(doc["outputs"]) == set(run.outputs)
    assert "[secret]" in json.dumps(doc)  # the kubeconfig, masked


def test_preview_text_tree_marks_protected_resources(run: Capture, stack: str):
    text = preview.render_text(run)
    assert "pulumi:pulumi:Stack" in text.splitlines()[3]
    cluster_line = next(line for line in text.splitlines() if "gcp:container/cluster:Cluster" in line)
    assert cluster_line.rstrip().endswith("[protect]") is (stack == "prod")
    assert f"+ {len(run.registrations)} to create" in text


def test_preview_json_is_deterministic():
    first = preview.render_json(run_stack("prod"))
    second = preview.render_json(run_stack("prod"))
    assert first == second


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_preview_cli_runs_offline(stack: str):
    """``python -m tools.preview`` exits 0 and prints one JSON document (what ``make -s preview`` runs)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--stack", stack, "--format", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["stack"] == stack and doc["resources"]



def test_image_digests_output_reports_the_deployed_images():
    """The output names what runs: the built image's digest (unknown until `pulumi up`
    built it) or the digest pinned in the stack config."""
    from tools.mock_runtime import UNKNOWN_PLACEHOLDER, read_stack_file

    assert run_stack("dev").outputs["image_digests"] == {"extractor": UNKNOWN_PLACEHOLDER,
                                                         "files-api": UNKNOWN_PLACEHOLDER}
    config, _ = read_stack_file("dev")
    digest = "sha256:" + "ab" * 32
    config = dict(config, **{"print-platform:images": {"files-api": {"digest": digest}}})
    captured = run_stack("dev", config_override=config)
    assert captured.error is None, captured.error
    assert captured.outputs["image_digests"] == {"extractor": UNKNOWN_PLACEHOLDER, "files-api": digest}
