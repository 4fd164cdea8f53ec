"""Usage assumptions (environments/<stack>/usage.yaml): validated like the stack config, errors naming file and key."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from cost_support import ROOT
from infra.settings import ConfigError
from tools.cost.usage import MIN_ASSUMPTION_CHARS, load_usage, parse_usage, usage_file

STACKS = ("dev", "prod")


def committed(stack: str) -> dict:
    return yaml.safe_load((ROOT / usage_file(stack)).read_text())


@pytest.mark.parametrize("stack", STACKS)
def test_the_committed_usage_is_valid_and_every_number_has_its_assumption(stack):
    usage = load_usage(stack)
    assumptions = list(usage.assumptions())
    assert len(assumptions) >= 15
    for key, _value, assumption in assumptions:
        assert len(assumption) >= MIN_ASSUMPTION_CHARS, key


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    [
        (lambda d: d["storage"].update(storedGb=d["storage"].pop("storedGib")), "storage.storedGb", "unknown key"),
        (lambda d: d["storage"]["storedGib"].update(value=-1), "storage.storedGib.value", "greater than or equal to 0"),
        (lambda d: d["storage"]["storedGib"].update(value="lots"), "storage.storedGib.value", "got 'lots'"),
        (lambda d: d["storage"]["storedGib"].pop("assumption"), "storage.storedGib.assumption", "missing"),
        (lambda d: d["storage"]["storedGib"].update(assumption="tbd"), "storage.storedGib.assumption", "at least"),
        (lambda d: d["storage"].__setitem__("storedGib", 20), "storage.storedGib", "valid dictionary"),
        (lambda d: d.pop("logging"), "logging", "missing"),
        (lambda d: d["gke"]["clusterFeeCredit"].update(value="maybe"), "gke.clusterFeeCredit.value", "boolean"),
    ],
    ids=["typo", "negative", "not-a-number", "no-assumption", "placeholder-assumption", "bare-number",
         "missing-section", "not-a-flag"],
)
def test_bad_usage_is_rejected_naming_file_and_key(mutate, key, fragment):
    data = copy.deepcopy(committed("dev"))
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_usage(data, "environments/dev/usage.yaml")
    message = str(info.value)
    assert message.startswith(f"environments/dev/usage.yaml: {key}: "), message
    assert fragment in message, message
    assert "\n" not in message


def test_a_missing_usage_file_names_it(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^environments/dev/usage.yaml: file not found"):
        load_usage("dev", tmp_path)


def test_usage_that_is_not_yaml_names_it(tmp_path: Path):
    (tmp_path / "environments" / "dev").mkdir(parents=True)
    (tmp_path / "environments" / "dev" / "usage.yaml").write_text("gke: [unclosed\n")
    with pytest.raises(ConfigError, match=r"^environments/dev/usage.yaml: not valid YAML"):
        load_usage("dev", tmp_path)


def test_load_reads_the_given_root(tmp_path: Path):
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    data = committed("dev")
    data["storage"]["storedGib"]["value"] = 123
    (tmp_path / usage_file("dev")).write_text(yaml.safe_dump(data))
    assert load_usage("dev", tmp_path).storage.stored_gib.value == 123
