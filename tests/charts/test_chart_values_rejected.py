"""A wrong values file is rejected with a message naming the wrong value.

Three guards: the chart's values.schema.json (``additionalProperties: false``
at every level) fails ``helm lint`` / ``helm template``; ``fail`` in the
templates catches what a schema cannot (cross-field rules); and
``infra.releases.load_environment_values`` rejects a bad environment file
before Pulumi runs, naming the file and the key.
"""
from __future__ import annotations

import copy
import shutil
import subprocess

import pytest

from chart_support import STACKS
from infra import releases
from tools import render

from test_chart_lint import helm_lint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good_values(stack_root) -> dict:
    specs, _ = render.releases_from_settings("prod", stack_root)
    return {s.name: s.values for s in specs}


@pytest.mark.parametrize("mutate, expected", [
    (lambda v: v.update(replicaCont=3), "replicaCont"),
    (lambda v: v["autoscaling"].update(maxReplica=4), "maxReplica"),
    (lambda v: v["route"].update(healthCheck={"requestPath": "/x"}), "requestPath"),
    # null removes the chart default (Helm's rule), so the required limit is missing
    (lambda v: v["resources"]["limits"].update({"ephemeral-storage": None}), "ephemeral-storage"),
    (lambda v: v["image"].update(digest="latest"), "/image/digest"),
    (lambda v: v["app"].update(logLevel="LOUD"), "/app/logLevel"),
    (lambda v: v["app"].update(workers=17), "/app/workers"),
    (lambda v: v["app"].update(maxConcurrentUploads=65), "/app/maxConcurrentUploads"),
    (lambda v: v["autoscaling"].update(minReplicas="two"), "/autoscaling/minReplicas"),
    (lambda v: v.update({"global": {"imageRegistry": "r"}}), "imageRegistry"),
    (lambda v: v["cloudSqlProxy"]["resources"]["requests"].update(gpu="1"), "gpu"),
])
def test_helm_lint_names_the_bad_value(mutate, expected, good_values, helm, tmp_path):
    values = copy.deepcopy(good_values["files-api"])
    mutate(values)
    proc = helm_lint(helm, values, tmp_path)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr, proc.stdout + proc.stderr


#: Schema objects that are maps by design (their values are typed instead).
MAPS = {"/properties/app/properties/extraEnv"}


def test_the_schema_closes_every_object():
    """additionalProperties: false at every level, so any misspelt key anywhere fails helm lint."""
    import json

    schema = json.loads((releases.CHART_DIR / "values.schema.json").read_text())
    objects = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                objects.append(where)
                if where in MAPS:
                    assert isinstance(node.get("additionalProperties"), dict), where
                else:
                    assert node.get("additionalProperties") is False, f"{where}: not closed"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(schema, "")
    assert len(objects) > 25 and MAPS <= set(objects)


@pytest.mark.parametrize("mutate, expected", [
    (lambda v: v["shutdown"].update(drainTimeoutSeconds=30), "shutdown.drainTimeoutSeconds (30) must be below"),
    (lambda v: v["autoscaling"].update(minReplicas=9, maxReplicas=3), "autoscaling.minReplicas (9) must not exceed"),
    (lambda v: v["route"]["gateway"].update(name=""), "route.enabled needs route.gateway.name"),
    (lambda v: v["database"].update(user=""), "database.user is required"),
    (lambda v: v["route"].update(healthCheck={"timeoutSec": 10}), "route.healthCheck.timeoutSec (10) must not exceed"),
    (lambda v: v["app"].update(workers=0), "app.maxUploadBytes needs app.workers and app.maxConcurrentUploads"),
    (lambda v: v["app"].pop("maxConcurrentUploads"), "app.maxUploadBytes needs app.workers and app.maxConcurrentUploads"),
])
def test_template_rules_fail_with_a_message(mutate, expected, good_values, helm, tmp_path):
    values = copy.deepcopy(good_values["files-api"])
    mutate(values)
    with pytest.raises(render.RenderError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        render.helm_template(render.ReleaseSpec("files-api", "print-platform", values), helm)


def _write_env(root, stack, service, text):
    (root / "environments" / stack / f"{service}.yaml").write_text(text)


@pytest.mark.parametrize("text, expected", [
    ("replicaCont: 2\n", "environments/dev/extractor.yaml: (top level): Additional properties are not allowed ('replicaCont'"),
    ("autoscaling:\n  maxReplica: 3\n", "environments/dev/extractor.yaml: autoscaling: Additional properties are not allowed ('maxReplica'"),
    ("shutdown:\n  drainTimeoutSeconds: -1\n", "environments/dev/extractor.yaml: shutdown.drainTimeoutSeconds: -1 is less than the minimum"),
    ("image:\n  digest: sha256:" + "c" * 64 + "\n", "environments/dev/extractor.yaml: image.digest: is set by the stack"),
    ("app:\n  uploadsSubscription: other\n", "environments/dev/extractor.yaml: app.uploadsSubscription: is set by the stack"),
    ("- a list\n", "must be a mapping of Helm values"),
    ("app: [\n", "not valid YAML"),
])
def test_environment_file_errors_name_file_and_key(text, expected, stack_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(stack_root, root)
    _write_env(root, "dev", "extractor", text)
    with pytest.raises(releases.ReleaseValuesError) as info:
        releases.load_environment_values("dev", "extractor", root)
    assert expected in str(info.value)


def test_missing_environment_file_is_named(stack_root, tmp_path):
    with pytest.raises(releases.ReleaseValuesError, match=r"environments/common/files-api.yaml: file not found"):
        releases.load_environment_values("qa", "files-api", tmp_path)
    with pytest.raises(releases.ReleaseValuesError, match=r"environments/qa/files-api.yaml: file not found"):
        releases.load_environment_values("qa", "files-api", stack_root)


@pytest.mark.parametrize("stack", STACKS)
def test_the_repository_environment_files_are_valid(stack):
    for service in releases.SERVICES:
        assert releases.load_environment_values(stack, service)


def test_release_values_reject_malformed_outputs(stack_root):
    from infra.settings import load_stack_settings
    from dataclasses import replace

    outputs = releases.stack_outputs_from_settings(load_stack_settings("prod", stack_root))
    bad = replace(outputs, image_digests={"files-api": "sha256:XYZ"})
    with pytest.raises(releases.ReleaseValuesError, match="files-api: image digest"):
        releases.release_values("files-api", {}, bad, "0" * 64)
    bad = replace(outputs, service_account_emails={"files-api": "someone@example.com"})
    with pytest.raises(releases.ReleaseValuesError, match="not a service account email"):
        releases.release_values("files-api", {}, bad, "0" * 64)
    with pytest.raises(releases.ReleaseValuesError, match="unknown service 'web'"):
        releases.release_values("web", {}, outputs, "0" * 64)


def test_helm_template_error_is_reported_by_render(good_values, helm):
    values = copy.deepcopy(good_values["extractor"])
    values["tpyo"] = 1
    with pytest.raises(render.RenderError, match=r"extractor: helm template failed:(.|\n)*tpyo"):
        render.helm_template(render.ReleaseSpec("extractor", "print-platform", values), helm)
    assert subprocess  # (subprocess is used through helm_lint)


def test_common_file_errors_are_named_and_the_stack_file_wins(stack_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(stack_root, root)
    _write_env(root, "common", "extractor", "port: 80\n")
    with pytest.raises(releases.ReleaseValuesError, match=r"environments/common/extractor.yaml: port: 80 is less than"):
        releases.load_environment_values("dev", "extractor", root)
    _write_env(root, "common", "extractor", "port: 8081\napp:\n  logLevel: ERROR\n  extraEnv: {A: 'common'}\n")
    _write_env(root, "dev", "extractor", "app:\n  logLevel: DEBUG\n")
    merged = releases.load_environment_values("dev", "extractor", root)
    assert merged == {"port": 8081, "app": {"logLevel": "DEBUG", "extraEnv": {"A": "common"}}}
    with pytest.raises(releases.ReleaseValuesError, match="'common' is not a stack"):
        releases.load_environment_values("common", "extractor", root)
