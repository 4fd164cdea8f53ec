"""The plan diff engine on hand-built preview documents (shape: docs/seams.md)."""
from __future__ import annotations

import copy

import pytest

from tools.plan_diff import (
    ABSENT,
    SECRET,
    STATEFUL_TYPES,
    PreviewDocumentError,
    diff_documents,
    diff_values,
    format_path,
)

from preview_docs import ADDRESS, DB, RELEASE, TOPIC, document, resource


def test_identical_documents_have_no_changes():
    base = document(DB, TOPIC, RELEASE)
    diff = diff_documents(base, copy.deepcopy(base))
    assert diff.changes == ()
    assert diff.summary == "+0 ~0 -0"
    assert diff.unchanged == 3
    assert diff.helm_releases == ("files-api",)


def test_create_update_delete_by_urn_with_property_paths():
    head_release = copy.deepcopy(RELEASE)
    head_release["inputs"]["values"]["image"]["tag"] = "1.1"
    diff = diff_documents(document(DB, TOPIC, RELEASE), document(DB, head_release, ADDRESS))
    assert diff.summary == "+1 ~1 -1"
    assert [(c.op, c.name) for c in diff.changes] == [("delete", "uploads"), ("update", "files-api"), ("create", "lb-ip")]
    update = diff.changes[1]
    assert [(p.path, p.old, p.new) for p in update.properties] == [("values.image.tag", "1.0", "1.1")]
    create = diff.changes[2]
    assert [(p.path, p.old, p.new) for p in create.properties] == [("name", ABSENT, "lb-ip")]
    delete = diff.changes[0]
    assert delete.stateful and not delete.protected
    assert [c.name for c in diff.attention] == ["uploads"]


def test_nested_change_on_protected_stateful_resource_is_called_out():
    head_db = copy.deepcopy(DB)
    head_db["inputs"]["settings"]["backupConfiguration"]["enabled"] = False
    head_db["inputs"]["settings"]["tier"] = "db-custom-2-7680"
    diff = diff_documents(document(DB), document(head_db))
    (change,) = diff.changes
    assert change.op == "update" and change.protected and change.stateful and change.needs_attention
    assert [(p.path, p.old, p.new) for p in change.properties] == [
        ("settings.backupConfiguration.enabled", True, False),
        ("settings.tier", "db-custom-1-3840", "db-custom-2-7680"),
    ]


def test_protect_flag_change_alone_is_an_update_and_counts_as_protected():
    unprotected = resource("gcp:compute/network:Network", "vpc", {"name": "vpc"})
    protected = copy.deepcopy(unprotected)
    protected["protect"] = True
    (change,) = diff_documents(document(unprotected), document(protected)).changes
    assert change.op == "update" and change.protected and not change.stateful
    assert [(p.path, p.old, p.new) for p in change.properties] == [("[protect]", ABSENT, True)]


def test_secret_values_are_masked_on_both_sides():
    plain = resource("gcp:sql/user:User", "app", {"password": "hunter2", "token": "plain-token", "name": "app"})
    secret = copy.deepcopy(plain)
    secret["inputs"]["token"] = SECRET
    secret["inputs"]["password"] = "hunter3"
    (change,) = diff_documents(document(plain), document(secret)).changes
    by_path = {p.path: p for p in change.properties}
    assert set(by_path) == {"password", "token"}
    assert by_path["token"].secret, "a value that became [secret] must stay masked on the old side too"
    assert by_path["password"].secret, "a key named password is masked even in plain text"


def test_secret_on_both_sides_shows_no_change():
    assert diff_values({"a": SECRET}, {"a": SECRET}) == []


def test_list_and_odd_keys_paths():
    changes = diff_values(
        {"rules": [{"ports": [80]}], "labels": {"app.kubernetes.io/name": "a"}},
        {"rules": [{"ports": [80, 443]}, {"ports": []}], "labels": {"app.kubernetes.io/name": "b"}},
    )
    assert [(c.path, c.old, c.new) for c in changes] == [
        ('labels["app.kubernetes.io/name"]', "a", "b"),
        ("rules[0].ports[1]", ABSENT, 443),
        ("rules[1].ports", ABSENT, []),
    ]


def test_type_change_is_a_leaf_change():
    (change,) = diff_values({"a": {"b": 1}}, {"a": "x"})
    assert (change.path, change.old, change.new) == ("a", {"b": 1}, "x")


def test_format_path_quotes():
    assert format_path("", "a") == "a"
    assert format_path("a", 0) == "a[0]"
    assert format_path("a", 'x"y') == 'a["x\\"y"]'


def test_base_none_means_everything_is_created():
    diff = diff_documents(None, document(DB, TOPIC))
    assert diff.summary == "+2 ~0 -0"


def test_stateful_types_cover_the_issue_list():
    for token in (
        "gcp:sql/databaseInstance:DatabaseInstance",
        "gcp:storage/bucket:Bucket",
        "gcp:container/cluster:Cluster",
    ):
        assert token in STATEFUL_TYPES


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "expected an object"),
        ({"resources": []}, "no string 'stack'"),
        ({"stack": "prod", "resources": {}}, "'resources' is not a list"),
        ({"stack": "prod", "resources": [{"urn": "u", "type": "t"}]}, "resources[0] has no string 'name'"),
        ({"stack": "prod", "resources": [{"urn": "u", "type": "t", "name": "n", "inputs": []}]}, "'inputs' is not an object"),
        ({"stack": "prod", "resources": [dict(DB), dict(DB)]}, "duplicate URN"),
    ],
)
def test_malformed_documents_are_rejected_with_location(bad, message):
    with pytest.raises(PreviewDocumentError, match=None) as info:
        diff_documents(document(), bad, head_label="head HEAD")
    assert message in str(info.value)
    assert "head HEAD" in str(info.value)


def test_stacks_must_match():
    with pytest.raises(PreviewDocumentError, match="stack 'dev'"):
        diff_documents(document(stack="dev"), document(stack="prod"))


@pytest.mark.parametrize("token", sorted(STATEFUL_TYPES))
def test_stateful_type_tokens_are_real_pulumi_gcp_types(token):
    """Each token is the one the installed pulumi-gcp registers (a typo would never match)."""
    import importlib
    import inspect

    _, module_path, class_name = token.split(":")
    module = importlib.import_module(f"pulumi_gcp.{module_path.split('/')[0]}")
    assert f"'{token}'" in inspect.getsource(getattr(module, class_name))
