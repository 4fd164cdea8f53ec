"""The benchmark of docs/preview-diff.md ("Figures") runs and reports its figures.

No timing is asserted: speed is read from the printed figures (machines are noisy),
not enforced by a timed test."""
from __future__ import annotations

import json

import pytest

from tools import bench_preview

pytestmark = pytest.mark.slow


def test_bench_preview_of_prod_reports_figures(capsys):
    assert bench_preview.main(["--stack", "prod", "--runs", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["stack"] == "prod" and figures["runs"] == 1 and len(figures["seconds"]) == 1
    assert figures["resources"] > 50, "the prod preview lists the whole program"
    assert 0 < figures["min"] <= figures["median"] <= figures["max"], figures


def test_bench_preview_rejects_zero_runs(capsys):
    assert bench_preview.main(["--stack", "prod", "--runs", "0"]) == 1
    assert "runs must be at least 1" in capsys.readouterr().err
