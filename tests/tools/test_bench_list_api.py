"""The list-API benchmark of docs/services.md ("Read API speed") runs and reports both figures and their ratio.

No timing is asserted (machines are noisy): it proves the benchmark works -- both servers
start under the same gunicorn config, answer the same items, and wrk's figures are parsed.
wrk missing fails the test naming the Debian package (make test installs it as root)."""

from __future__ import annotations

import json
import shutil

import pytest

from tools import bench_list_api

pytestmark = pytest.mark.slow


def test_bench_list_api_prints_both_figures_and_the_ratio(capsys):
    if shutil.which("wrk") is None:
        pytest.fail(bench_list_api.WRK_HINT)
    samples = bench_list_api.SAMPLES
    if not (samples / "MANIFEST.tsv").is_file():
        pytest.skip(f"sample corpus not found at {samples} (tests read ../shared/samples)")
    assert bench_list_api.main(["--seconds", "2", "--rounds", "2", "--warmup", "0", "--connections", "4", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    from tools.localdev.client import sample_files

    assert figures["rows"] == len(sample_files(samples)) and figures["path"] == "/v1/files?limit=20"
    api, ceiling = figures["servers"]["files-api"], figures["servers"]["ceiling"]
    assert api["requests"] > 0 and ceiling["requests"] > 0
    assert figures["ratio"] == pytest.approx(api["requests_per_s"] / ceiling["requests_per_s"], abs=1e-3)
    assert api["cpu_ms_per_request"] > 0 and ceiling["cpu_ms_per_request"] > 0
    assert figures["cpu_ratio"] == pytest.approx(ceiling["cpu_ms_per_request"] / api["cpu_ms_per_request"], abs=1e-2)


def test_missing_wrk_says_how_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(bench_list_api.BenchError, match=r"apt-get install -y wrk"):
        bench_list_api.find_wrk()
