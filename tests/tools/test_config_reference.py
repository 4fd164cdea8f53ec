"""The config reference in docs/infra.md is generated from the models and committed up to date."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.bootstrap.settings import BootstrapConfig
from infra.monitoring import AlertsConfig
from infra.settings import StackConfig
from tools import config_reference as ref

ROOT = Path(__file__).resolve().parents[2]


def test_committed_page_is_what_the_models_say():
    text = (ROOT / ref.PAGE).read_text(encoding="utf-8")
    assert ref.updated_page(text, ref.render(ROOT)) == text, (
        "docs/infra.md's config reference is stale: run `python -m tools.config_reference`")


@pytest.mark.parametrize("model, prefix", [(StackConfig, ()), (BootstrapConfig, ()),
                                           (AlertsConfig.model_fields["uptime"].annotation, ("uptime",))])
def test_every_key_of_the_models_has_a_row(model, prefix):
    section = ref.render(ROOT)
    for path, _info in ref.rows(model):
        assert f"| `{'.'.join(prefix + path)}` |" in section, path


def test_a_changed_default_makes_the_check_fail(tmp_path: Path, monkeypatch):
    """--check compares with the models: a page edited by hand (or a model changed without
    regenerating) fails with exit status 1 and a hint."""
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / "infra" / "bootstrap").mkdir(parents=True)
    (tmp_path / "infra/bootstrap/Pulumi.bootstrap.yaml").write_bytes((ROOT / "infra/bootstrap/Pulumi.bootstrap.yaml").read_bytes())
    for stack in ("dev", "prod"):
        (tmp_path / "environments" / stack).mkdir(parents=True)
        (tmp_path / f"environments/{stack}/alerts.yaml").write_bytes((ROOT / f"environments/{stack}/alerts.yaml").read_bytes())
    (tmp_path / "docs").mkdir()
    page = (ROOT / ref.PAGE).read_text(encoding="utf-8")
    stale = page.replace("| `print-platform:database.backupStartTime` | string | `02:00` |",
                         "| `print-platform:database.backupStartTime` | string | `03:00` |")
    assert stale != page
    (tmp_path / ref.PAGE).write_text(stale, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "tools.config_reference", "--check", "--root", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "python -m tools.config_reference" in done.stderr
    done = subprocess.run([sys.executable, "-m", "tools.config_reference", "--root", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ref.PAGE).read_text(encoding="utf-8") == page


def test_missing_markers_are_an_error():
    with pytest.raises(ValueError, match="markers"):
        ref.updated_page("# no markers here\n", "x")
