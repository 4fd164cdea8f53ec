"""The benchmark of docs/preview-diff.md ("Figures"): it runs, and the offline preview of prod stays within budget."""
from __future__ import annotations

import json

import pytest

from tools import bench_preview

pytestmark = pytest.mark.slow

#: The issue asks for "a few seconds" (measured: median 3.7 s on 2 shared cores);
#: the bound is loose so that a loaded CI machine does not fail, while a
#: regression to tens of seconds (e.g. the program evaluated twice) does.
BUDGET_SECONDS = 20.0


def test_bench_preview_of_prod_reports_figures_within_budget(capsys):
    assert bench_preview.main(["--stack", "prod", "--runs", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["stack"] == "prod" and figures["runs"] == 1 and len(figures["seconds"]) == 1
    assert figures["resources"] > 50, "the prod preview lists the whole program"
    assert 0 < figures["min"] <= figures["median"] <= figures["max"] < BUDGET_SECONDS, figures


def test_bench_preview_rejects_zero_runs(capsys):
    assert bench_preview.main(["--stack", "prod", "--runs", "0"]) == 1
    assert "runs must be at least 1" in capsys.readouterr().err
