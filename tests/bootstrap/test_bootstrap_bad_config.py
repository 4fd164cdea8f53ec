"""A bad bootstrap config fails before any resource is registered, with one message naming
the file and the key (same contract as the platform's tests/infra/test_bad_config.py)."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from infra.bootstrap.settings import PROJECT
from infra.settings import ConfigError
from tools import preview
from tools.mock_bootstrap import run_bootstrap_stack

ROOT = Path(__file__).resolve().parents[2]
FILE = "infra/bootstrap/Pulumi.bootstrap.yaml"


def _config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / FILE).read_text())["config"]


def _fails(change: Callable[[dict[str, Any]], None]) -> str:
    config = copy.deepcopy(_config())
    change(config)
    capture = run_bootstrap_stack(config_override=config)
    assert isinstance(capture.error, ConfigError), capture.error
    stack_resources = [r for r in capture.registrations if r.type != "pulumi:pulumi:Stack"]
    assert stack_resources == [], "registered before the config was validated"
    message = str(capture.error)
    assert "\n" not in message
    return message


def test_missing_repository():
    message = _fails(lambda c: c[f"{PROJECT}:github"].pop("repository"))
    assert message == f"{FILE}: {PROJECT}:github.repository: missing (required key)"


def test_missing_github_section():
    message = _fails(lambda c: c.pop(f"{PROJECT}:github"))
    assert message == f"{FILE}: {PROJECT}:github: missing (required key)"


@pytest.mark.parametrize("repository", ["print-platform/*", "*/*", "print-platform/print-*"])
def test_wildcard_repository(repository: str):
    message = _fails(lambda c: c[f"{PROJECT}:github"].update(repository=repository))
    assert message.startswith(f"{FILE}: {PROJECT}:github.repository: ")
    assert "wildcards are not allowed" in message


def test_not_a_repository():
    message = _fails(lambda c: c[f"{PROJECT}:github"].update(repository="just-a-name"))
    assert message == f"{FILE}: {PROJECT}:github.repository: 'just-a-name' is not a GitHub repository 'owner/name'"


def test_unknown_region():
    message = _fails(lambda c: c.update({"gcp:region": "europe-west99"}))
    assert message.startswith(f"{FILE}: gcp:region: unknown region 'europe-west99'")


def test_bad_deploy_ref():
    message = _fails(lambda c: c[f"{PROJECT}:stacks"]["prod"].update(deployRefs=["main"]))
    assert message.startswith(f"{FILE}: {PROJECT}:stacks.prod.deployRefs: 'main' is not a branch or tag ref")


def test_no_deploy_ref():
    message = _fails(lambda c: c[f"{PROJECT}:stacks"]["dev"].update(deployRefs=[]))
    assert message.startswith(f"{FILE}: {PROJECT}:stacks.dev.deployRefs: ")


def test_typo_key():
    message = _fails(lambda c: c[f"{PROJECT}:kms"].update(rotationPeriodDay=30))
    assert message.startswith(f"{FILE}: {PROJECT}:kms.rotationPeriodDay: unknown key")


def test_rotation_period_out_of_range():
    message = _fails(lambda c: c[f"{PROJECT}:kms"].update(rotationPeriodDays=400))
    assert message.startswith(f"{FILE}: {PROJECT}:kms.rotationPeriodDays: ")


def test_stack_without_a_platform_stack_file():
    message = _fails(lambda c: c[f"{PROJECT}:stacks"].update(staging={"deployRefs": ["refs/heads/main"]}))
    assert message.startswith(f"{FILE}: {PROJECT}:stacks.staging: the platform stack is invalid: Pulumi.staging.yaml: ")


def test_seed_project_is_not_a_stack_project():
    message = _fails(lambda c: c.update({"gcp:project": "print-platform-prod"}))
    assert message.startswith(f"{FILE}: gcp:project: 'print-platform-prod' is also stack prod's project")


def test_bad_project_id():
    message = _fails(lambda c: c.update({"gcp:project": "Seed_Project"}))
    assert message.startswith(f"{FILE}: gcp:project: 'Seed_Project' is not a Google Cloud project id")


def test_preview_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """`make preview STACK=bootstrap` on a bad file: exit status 2, one line naming file and key."""
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    (tmp_path / "infra" / "bootstrap").mkdir(parents=True)
    config = _config()
    config[f"{PROJECT}:github"]["repository"] = "acme/*"
    (tmp_path / FILE).write_text(yaml.safe_dump({"config": config}))
    assert preview.main(["--stack", "bootstrap", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {FILE}: {PROJECT}:github.repository: ")


def test_every_problem_at_once_with_the_closest_key():
    """A typo'd key, a bad region and a bad ref: three lines in one run, the typo with its closest key."""
    def three(c):
        c[f"{PROJECT}:kms"] = {"rotationPeriodDay": 30}
        c["gcp:region"] = "mars-north1"
        c[f"{PROJECT}:stacks"]["dev"]["deployRefs"] = ["main"]
    config = copy.deepcopy(_config())
    three(config)
    capture = run_bootstrap_stack(config_override=config)
    assert isinstance(capture.error, ConfigError), capture.error
    assert [r for r in capture.registrations if r.type != "pulumi:pulumi:Stack"] == []
    lines = str(capture.error).split("\n")
    assert lines == capture.error.problems and len(lines) == 3, lines
    keys = sorted(line.split(": ")[1] for line in lines)
    assert keys == ["gcp:region", f"{PROJECT}:kms.rotationPeriodDay", f"{PROJECT}:stacks.dev.deployRefs"]
    assert any("did you mean `rotationPeriodDays`?" in line for line in lines), lines
