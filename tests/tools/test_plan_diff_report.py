"""The Markdown report and the manifest diff on hand-built inputs."""
from __future__ import annotations

import copy

import pytest

from tools.plan_diff import SECRET, PreviewDocumentError, diff_documents
from tools.plan_diff_manifests import diff_manifests, mask_secrets, read_rendered
from tools.plan_diff_report import code, marker, render_failure, render_report

from preview_docs import DB, RELEASE, TOPIC, document, resource

LABELS = dict(base_label="`origin/main` at `abc1234`", head_label="working tree at `def5678`")


def test_no_changes_says_so_explicitly():
    base = document(DB, TOPIC)
    report = render_report(diff_documents(base, copy.deepcopy(base)), **LABELS)
    assert report.startswith(marker("prod") + "\n")
    assert "**No changes.** 2 resources unchanged." in report
    assert report.rstrip().endswith("**Summary (prod): +0 ~0 -0** (2 unchanged)")
    assert "[!WARNING]" not in report


def test_update_of_protected_resource_is_called_out_before_the_table():
    head_db = copy.deepcopy(DB)
    head_db["inputs"]["settings"]["tier"] = "db-custom-2-7680"
    head_db["inputs"]["rootPassword"] = "leaked-in-plain-text"
    report = render_report(diff_documents(document(DB, TOPIC), document(head_db)), **LABELS)
    warning = report.index("[!WARNING]")
    assert warning < report.index("### Resources")
    assert "**update** `db` (`gcp:sql/databaseInstance:DatabaseInstance`; protected, stateful)" in report
    assert "**delete** `uploads` (`gcp:pubsub/topic:Topic`; stateful)" in report
    assert '~ settings.tier: "db-custom-1-3840" -> "db-custom-2-7680"' in report
    assert f"~ rootPassword: {SECRET} -> {SECRET}" in report
    assert "leaked-in-plain-text" not in report
    assert "**Summary (prod): +0 ~1 -1**" in report
    assert "## Preview diff: `prod` +0 ~1 -1" in report


def test_create_lists_inputs_in_details():
    added = resource("gcp:storage/bucket:Bucket", "uploads", {"name": "b", "labels": {"team": "print"}})
    report = render_report(diff_documents(document(), document(added)), **LABELS)
    assert "| + create ⚠️ | `uploads` | `gcp:storage/bucket:Bucket` | 2 inputs |" in report
    assert "<details>" in report and '+ labels.team: "print"' in report and '+ name: "b"' in report


def test_manifest_diff_section_and_summary():
    base = {"files-api": "kind: Deployment\nspec:\n  replicas: 2\n", "old": "kind: ConfigMap\n"}
    head = {"files-api": "kind: Deployment\nspec:\n  replicas: 3\n", "new": "kind: ConfigMap\n"}
    manifests = diff_manifests(base, head)
    assert [(m.release, m.status, m.added, m.removed) for m in manifests] == [
        ("files-api", "changed", 1, 1),
        ("new", "added", 1, 0),
        ("old", "removed", 0, 1),
    ]
    doc = document(RELEASE)
    report = render_report(diff_documents(doc, copy.deepcopy(doc)), manifests=manifests, **LABELS)
    assert "No changes" not in report
    assert "- `files-api`: changed (+1 -1 lines)" in report
    assert "-  replicas: 2\n+  replicas: 3" in report
    assert "rendered manifests of 3 Helm releases changed" in report


def test_manifest_diff_is_cut_at_max_lines():
    base = {"r": "".join(f"a{i}\n" for i in range(50))}
    head = {"r": "".join(f"b{i}\n" for i in range(50))}
    doc = document(RELEASE)
    report = render_report(
        diff_documents(doc, doc), manifests=diff_manifests(base, head), max_diff_lines=10, **LABELS
    )
    assert "more diff lines cut" in report
    assert "+b49" not in report


def test_unchanged_manifests_keep_no_changes():
    doc = document(RELEASE)
    same = {"files-api": "kind: Service\n"}
    report = render_report(diff_documents(doc, doc), manifests=diff_manifests(same, dict(same)), **LABELS)
    assert "**No changes.** 1 resources unchanged; the rendered manifests of 1 Helm releases are identical." in report
    assert "- `files-api`: unchanged" in report


def test_report_is_deterministic():
    head_db = copy.deepcopy(DB)
    head_db["inputs"]["settings"]["tier"] = "x"
    args = (document(DB, TOPIC, RELEASE), document(head_db, RELEASE))
    assert render_report(diff_documents(*args), **LABELS) == render_report(diff_documents(*args), **LABELS)


def test_notes_and_failure():
    doc = document(TOPIC)
    report = render_report(diff_documents(doc, doc), notes=["base has no render"], **LABELS)
    assert "> [!NOTE]\n> base has no render" in report
    failure = render_failure("dev", error="Traceback\nboom", **LABELS)
    assert failure.startswith(marker("dev"))
    assert "`dev` failed" in failure and "boom" in failure


def test_code_span_escapes_backticks_and_pipes():
    assert code("a`b") == "``a`b``"
    assert code("a|b") == "`a\\|b`"


def test_mask_secrets_keeps_other_documents_verbatim():
    text = (
        "---\n# Source: chart/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
        "data:\n  password: aHVudGVyMg==\nstringData:\n  token: abc\n"
        "---\n# Source: chart/templates/cm.yaml\nkind: ConfigMap\ndata:\n    key:   'value'\n"
    )
    masked = mask_secrets(text)
    assert "aHVudGVyMg==" not in masked and "abc" not in masked
    assert "password: '[secret]'" in masked and "# Source: chart/templates/secret.yaml" in masked
    assert "# Source: chart/templates/cm.yaml\nkind: ConfigMap\ndata:\n    key:   'value'\n" in masked


def test_read_rendered(tmp_path):
    assert read_rendered(None) is None
    (tmp_path / "files-api.yaml").write_text("kind: Service\n")
    (tmp_path / "notes.txt").write_text("ignored")
    assert read_rendered(tmp_path) == {"files-api": "kind: Service\n"}


def test_changed_stack_outputs_are_listed_and_secrets_stay_masked():
    base = document(TOPIC)
    head = copy.deepcopy(base)
    base["outputs"] = {"url": "https://a.example", "kubeconfig": SECRET, "gone": 1}
    head["outputs"] = {"url": "https://b.example", "kubeconfig": "plain-text-config"}
    diff = diff_documents(base, head)
    assert [(p.path, p.kind, p.secret) for p in diff.outputs] == [
        ("gone", "remove", False), ("kubeconfig", "change", True), ("url", "change", False)]
    report = render_report(diff, **LABELS)
    assert "### Stack outputs" in report and "3 stack outputs changed" in report
    assert '~ url: "https://a.example" -> "https://b.example"' in report
    assert "plain-text-config" not in report
    assert "No changes" not in report, "changed outputs are a change"
    assert "**Summary (prod): +0 ~0 -0**" in report


def test_outputs_must_be_an_object():
    bad = document(TOPIC)
    bad["outputs"] = []
    with pytest.raises(PreviewDocumentError, match="'outputs' is not an object"):
        diff_documents(document(TOPIC), bad)
