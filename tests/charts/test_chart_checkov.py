"""checkov (offline, pinned) over every rendered release: zero failed checks.

checkov runs isolated (``uv tool run --from checkov==<Makefile CHECKOV_VERSION>``,
tests/checkov_support.py) because its dependency tree clashes with pulumi's. It scans the manifests
``helm template`` renders for each stack (``--framework kubernetes``): the
chart's defaults alone are not deployable (no image digest), the stacks' values
are what runs. A skip, if ever needed, is a ``checkov.io/skip<N>:
CKV_K8S_xx=<reason>`` annotation in the chart's templates; today there is none.
"""
from __future__ import annotations

import json
import re

import pytest

from checkov_support import run_checkov
from infra import releases

pytestmark = pytest.mark.slow

SKIP = re.compile(r"checkov\.io/skip\d+:\s*(\S+?)=(.*)$")


def test_every_skip_in_the_chart_names_a_check_and_a_reason():
    skips = []
    for path in sorted((releases.CHART_DIR / "templates").glob("*.yaml")):
        for line in path.read_text().splitlines():
            if "checkov.io/skip" in line:
                match = SKIP.search(line)
                assert match, f"{path.name}: malformed skip annotation: {line.strip()}"
                check, reason = match.groups()
                assert re.fullmatch(r"CKV2?_K8S_\d+", check), f"{path.name}: {check}"
                assert len(reason.split()) >= 6, f"{path.name}: {check} needs a real reason, got {reason!r}"
                skips.append(check)
    # Today the chart needs no skip at all (checkov 3.3.30 passes every check).


def test_checkov_passes_on_every_rendered_release(rendered, tmp_path):
    for (stack, service), r in rendered.items():
        (tmp_path / f"{stack}-{service}.yaml").write_text(r.text)
    result = run_checkov("kubernetes", tmp_path, "-o", "json", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for rep in reports for c in rep["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert result.returncode == 0
    summary = reports[0]["summary"]
    assert summary["passed"] > 100
    for rep in reports:
        for c in rep["results"]["skipped_checks"]:
            assert c.get("check_result", {}).get("suppress_comment"), f"{c['check_id']} skipped without a reason"
