"""`make cost` on the real stacks: the JSON document, full coverage of the plan, the targets, errors, the preview's warning."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cost_support import ROOT
from tools.cost.cli import main
from tools.cost.estimate import HELM_RELEASE_TYPE, PROJECT_LOGGING_TYPE, is_component
from tools.mock_runtime import run_stack

#: Monthly targets of the committed usage assumptions (issue: dev <= 150, prod <= 700).
TARGETS = {"dev": 150, "prod": 700}


def cost_json(stack: str, capsys, *extra: str) -> dict[str, Any]:
    assert main(["--stack", stack, "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("stack", TARGETS)
def test_json_document_shape_and_sums(stack, capsys):
    doc = cost_json(stack, capsys)
    assert list(doc)[:5] == ["stack", "currency", "prices_as_of", "items", "total_monthly"]
    assert doc["stack"] == stack and doc["currency"] == "USD"
    for item in doc["items"]:
        assert set(item) >= {"type", "name", "dimensions", "monthly"}
        assert item["monthly"] == pytest.approx(sum(d["monthly"] for d in item["dimensions"]), abs=1e-9)
        for dim in item["dimensions"]:
            assert set(dim) >= {"dimension", "quantity", "unit", "unit_price", "monthly"}
            # (rounded half up to the cent; float rounding here may land one cent lower)
            assert dim["monthly"] == pytest.approx(dim["quantity"] * dim["unit_price"], abs=0.0051)
    assert doc["total_monthly"] == pytest.approx(sum(i["monthly"] for i in doc["items"]), abs=1e-6)


@pytest.mark.parametrize("stack", TARGETS)
def test_the_committed_assumptions_meet_the_target(stack, capsys):
    doc = cost_json(stack, capsys)
    assert doc["total_monthly"] <= TARGETS[stack]
    assert doc["budget_monthly"] is not None and doc["total_monthly"] <= doc["budget_monthly"]
    assert doc["warnings"] == []


@pytest.mark.parametrize("stack", TARGETS)
def test_every_billable_resource_of_the_plan_is_an_item(stack, capsys):
    doc = cost_json(stack, capsys)
    plan = run_stack(stack).as_document()
    assert doc["unpriced"] == []
    items = {(i["type"], i["name"]) for i in doc["items"]}
    free = {f["type"]: f["count"] for f in doc["free"]}
    for resource in plan["resources"]:
        if is_component(resource["type"]):
            continue
        key = (resource["type"], resource["name"])
        assert key in items or free.get(resource["type"], 0) > 0, f"{key} is neither priced nor free"
    counted = len([i for i in doc["items"] if i["type"] not in (HELM_RELEASE_TYPE, PROJECT_LOGGING_TYPE)])
    # (a Release in the plan is priced by its Pods item, counted above by name)
    custom = len([r for r in plan["resources"] if not is_component(r["type"]) and r["type"] != HELM_RELEASE_TYPE])
    assert counted + sum(free.values()) == custom
    # the services' Pods are priced whether or not their releases are in the plan
    assert {i["name"] for i in doc["items"] if i["type"] == HELM_RELEASE_TYPE} == {"files-api", "extractor"}


def test_text_lists_dimensions_and_the_total(capsys):
    assert main(["--stack", "prod"]) == 0
    out = capsys.readouterr().out
    assert "gcp:sql/databaseInstance:DatabaseInstance  postgres" in out
    assert "    vCPU: 2,920 vCPU-hour x " in out
    assert "Total: USD " in out and "(budget USD 700)" in out


def test_preview_json_input_gives_the_same_estimate(tmp_path: Path, capsys):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(run_stack("dev").as_document()))
    assert cost_json("dev", capsys, "--preview-json", str(path)) == cost_json("dev", capsys)


def copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "environments", root / "environments")
    shutil.copytree(ROOT / "charts", root / "charts")
    return root


def test_a_bad_usage_file_exits_2_naming_file_and_key(tmp_path: Path, capsys):
    root = copy_root(tmp_path)
    path = root / "environments" / "dev" / "usage.yaml"
    data = yaml.safe_load(path.read_text())
    data["network"]["natVms"]["value"] = -2
    path.write_text(yaml.safe_dump(data))
    assert main(["--stack", "dev", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "error: environments/dev/usage.yaml: network.natVms.value: " in err


def test_a_bad_price_table_exits_2(tmp_path: Path, capsys):
    root = copy_root(tmp_path)
    path = root / "environments" / "prices.yaml"
    path.write_text(path.read_text().replace("maxAgeDays: 180", "maxAgeDays: soon"))
    assert main(["--stack", "dev", "--root", str(root)]) == 2
    assert "error: environments/prices.yaml: maxAgeDays: " in capsys.readouterr().err


@pytest.mark.slow
def test_the_preview_warns_when_the_estimate_exceeds_the_budget(tmp_path: Path):
    root = copy_root(tmp_path)
    path = root / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("amountUsd: 150", "amountUsd: 40"))
    result = subprocess.run([sys.executable, "-m", "tools.preview", "--stack", "dev", "--root", str(root)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "warning: cost (dev): the estimate, USD " in result.stderr
    assert "exceeds the dev budget of USD 40" in result.stderr
    committed = subprocess.run([sys.executable, "-m", "tools.preview", "--stack", "dev"],
                               cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert committed.returncode == 0 and "exceeds" not in committed.stderr
