"""The cost section of the plan diff: rendering, and a real values change raising prod's replicas."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cost_support import ROOT
from tools.plan_diff_report import cost_section
from tools.preview_diff import main


def estimate(total: float, items: list[dict[str, Any]], warnings: list[str] | None = None) -> dict[str, Any]:
    return {"stack": "prod", "currency": "USD", "prices_as_of": "2026-12-01", "items": items,
            "total_monthly": total, "budget_monthly": 700, "warnings": warnings or []}


def item(name: str, *dims: tuple[str, float, float]) -> dict[str, Any]:
    return {"type": "kubernetes:helm.sh/v3:Release", "name": name, "monthly": sum(d[2] for d in dims),
            "dimensions": [{"dimension": d, "quantity": q, "unit": "vCPU-hour", "unit_price": 0.04, "monthly": m}
                           for d, q, m in dims]}


def test_totals_and_only_the_changed_lines():
    base = estimate(100.0, [item("files-api", ("vCPU", 766.5, 30.66), ("memory", 10, 1.0))])
    head = estimate(110.22, [item("files-api", ("vCPU", 1022, 40.88), ("memory", 10, 1.0))])
    text = "\n".join(cost_section(base, head))
    assert "| **total** | 100.00 | 110.22 | **+10.22** |" in text
    assert "| `files-api` (`kubernetes:helm.sh/v3:Release`) | vCPU | 766.5 vCPU-hour → 1,022 vCPU-hour | 30.66 | 40.88 | +10.22 |" in text
    assert "| memory |" not in text


def test_added_and_removed_items_and_a_lower_total():
    base = estimate(50.0, [item("old", ("vCPU", 100, 4.0))])
    head = estimate(45.0, [item("new", ("vCPU", 50, 2.0))])
    text = "\n".join(cost_section(base, head))
    assert "**−5.00**" in text
    assert "| `old` (`kubernetes:helm.sh/v3:Release`) | vCPU | 100 vCPU-hour → — | 4.00 | — | −4.00 |" in text
    assert "| `new` (`kubernetes:helm.sh/v3:Release`) | vCPU | — → 50 vCPU-hour | — | 2.00 | +2.00 |" in text


def test_no_priced_change_and_the_head_warnings():
    same = estimate(10.0, [item("files-api", ("vCPU", 10, 0.4))], warnings=["the estimate exceeds the budget"])
    text = "\n".join(cost_section(same, same))
    assert "No priced line changed." in text
    assert "> [!WARNING]\n> - the estimate exceeds the budget" in text


def test_a_base_without_an_estimate_shows_the_head_total():
    text = "\n".join(cost_section(None, estimate(12.5, [])))
    assert "Head: **USD 12.50 a month**" in text and "no estimate to compare with" in text
    assert cost_section(None, None) == []


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
def test_raising_prods_replicas_raises_the_monthly_total(tmp_path: Path, capsys):
    """`make preview-diff STACK=prod` after a values change that raises files-api's HPA minimum 3 -> 4."""
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    values = repo / "environments" / "prod" / "files-api.yaml"
    text = values.read_text()
    assert text.count("minReplicas: 3") == 1, "the scenario needs prod files-api's HPA minimum to be 3"
    values.write_text(text.replace("minReplicas: 3", "minReplicas: 4"))

    assert main(["--stack", "prod", "--base", "HEAD", "--repo", str(repo), "--no-render"]) == 0
    report = capsys.readouterr().out
    assert "### Monthly cost estimate" in report
    total = re.search(r"\| \*\*total\*\* \| ([0-9,.]+) \| ([0-9,.]+) \| \*\*\+([0-9,.]+)\*\* \|", report)
    assert total, report
    base, head, delta = (float(g.replace(",", "")) for g in total.groups())
    assert head > base and delta == pytest.approx(head - base, abs=0.005)
    assert re.search(r"\| `files-api` \(`kubernetes:helm.sh/v3:Release`\) \| vCPU \| 766.5 vCPU-hour → 1,022 vCPU-hour \|",
                     report), report
