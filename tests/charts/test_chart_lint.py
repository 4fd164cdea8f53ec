"""`helm lint --strict` for every service in every stack, with the values the program computes."""
from __future__ import annotations

import json
import subprocess

import pytest

from chart_support import STACKS
from infra import releases
from tools import render

pytestmark = pytest.mark.slow


def helm_lint(helm, values: dict, tmp_path, name: str = "values.json") -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return subprocess.run(
        [str(helm), "lint", "--strict", str(releases.CHART_DIR), "-f", str(path),
         "--kube-version", render.KUBE_VERSION, "--namespace", "print-platform"],
        capture_output=True, text=True)


@pytest.mark.parametrize("stack", STACKS)
def test_helm_lint_strict_passes_for_every_service(stack, stack_root, helm, tmp_path):
    specs, notes = render.releases_from_settings(stack, stack_root)
    assert not notes and [s.name for s in specs] == list(releases.SERVICES)
    for spec in specs:
        proc = helm_lint(helm, spec.values, tmp_path, f"{spec.name}.json")
        assert proc.returncode == 0, f"{stack}/{spec.name}:\n{proc.stdout}\n{proc.stderr}"
        assert "0 chart(s) failed" in proc.stdout


def test_the_pinned_helm_is_the_one_installed(helm):
    out = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, check=True).stdout
    assert out.startswith(__import__("tools.install_helm", fromlist=["HELM_VERSION"]).HELM_VERSION)
