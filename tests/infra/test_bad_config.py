"""Bad stack config fails at program start with one message naming the key and the file,
before any resource is registered — one test per kind of mistake, against the real program
(``tools.mock_runtime.run_stack`` with a modified copy of the real stack file)."""
from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from infra.settings import ConfigError, read_stack_file
from tools.mock_runtime import STACK_TYPE, run_stack

ROOT = Path(__file__).resolve().parents[2]


def _run_with(stack: str, mutate: Callable[[dict[str, Any]], None]):
    config, _ = read_stack_file(stack)
    config = copy.deepcopy(config)
    mutate(config)
    return run_stack(stack, config_override=config)


def _assert_rejected(capture, file: str, key: str, *fragments: str) -> None:
    assert isinstance(capture.error, ConfigError), repr(capture.error)
    message = str(capture.error)
    assert message.startswith(f"{file}: {key}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message
    registered = [r.urn for r in capture.registrations if r.type != STACK_TYPE]
    assert registered == [], f"resources registered despite bad config: {registered}"


def test_valid_config_registers_resources():
    """The control case: the unmodified stack file runs (so the failures below are caused by the edits)."""
    capture = _run_with("dev", lambda c: None)
    assert capture.error is None
    assert len(capture.registrations) > 10


def test_missing_key():
    capture = _run_with("prod", lambda c: c.pop("gcp:project"))
    _assert_rejected(capture, "Pulumi.prod.yaml", "gcp:project", "missing")


def test_missing_nested_key():
    capture = _run_with("dev", lambda c: c["print-platform:database"].pop("tier"))
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:database.tier", "missing")


def test_wrong_type():
    capture = _run_with("prod", lambda c: c["print-platform:database"].update(diskSizeGb="fifty"))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:database.diskSizeGb", "integer")


def test_wrong_enum_value():
    capture = _run_with("dev", lambda c: c["print-platform:gke"].update(releaseChannel="RAPID"))
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:gke.releaseChannel", "RAPID")


def test_unknown_region():
    capture = _run_with("dev", lambda c: c.update({"gcp:region": "europe-west99"}))
    _assert_rejected(capture, "Pulumi.dev.yaml", "gcp:region", "unknown region", "europe-west99")


def test_bad_cidr():
    capture = _run_with("prod", lambda c: c["print-platform:network"].update(podsCidr="10.112.0.0/33"))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:network.podsCidr", "10.112.0.0/33")


def test_overlapping_cidrs():
    def overlap(c):
        c["print-platform:network"]["servicesCidr"] = c["print-platform:network"]["subnetCidr"]
    capture = _run_with("dev", overlap)
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:network.servicesCidr", "overlaps")


def test_control_plane_open_to_the_internet():
    def open_up(c):
        c["print-platform:gke"]["masterAuthorizedNetworks"][0]["cidrBlock"] = "0.0.0.0/0"
    capture = _run_with("prod", open_up)
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:gke.masterAuthorizedNetworks[0].cidrBlock", "0.0.0.0/0")


def test_maintenance_window_too_short_for_gke():
    """One 4-hour Sunday window is 16 h per 32 days; GKE would reject it at `pulumi up`."""
    def short(c):
        c["print-platform:gke"]["maintenanceWindow"].update(
            startTime="2026-01-04T01:00:00Z", endTime="2026-01-04T05:00:00Z", recurrence="FREQ=WEEKLY;BYDAY=SU")
    capture = _run_with("prod", short)
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:gke.maintenanceWindow.recurrence",
                     "48 h", "16 h")


def test_ha_setting_contradicting_protection():
    capture = _run_with("prod", lambda c: c["print-platform:database"].update(availability="ZONAL"))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:database.availability",
                     "ZONAL", "print-platform:protect", "REGIONAL")


def test_tier_contradicting_edition():
    capture = _run_with("dev", lambda c: c["print-platform:database"].update(edition="ENTERPRISE_PLUS"))
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:database.tier", "ENTERPRISE_PLUS")


def test_backoff_contradiction():
    capture = _run_with("dev", lambda c: c["print-platform:pubsub"].update(minimumBackoff="400s", maximumBackoff="300s"))
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:pubsub.minimumBackoff", "maximumBackoff")


def test_malformed_image_digest():
    capture = _run_with("prod", lambda c: c.update({"print-platform:images": {"files-api": {"digest": "latest"}}}))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:images.files-api.digest", "sha256")


def test_unknown_key_is_a_typo():
    capture = _run_with("dev", lambda c: c.update({"print-platform:databse": {"tier": "db-f1-micro"}}))
    _assert_rejected(capture, "Pulumi.dev.yaml", "print-platform:databse", "unknown key")


def test_edge_setting_checked_by_the_component_rules():
    capture = _run_with("prod", lambda c: c["print-platform:loadBalancer"]["armor"].update(rateLimitIntervalSec=7))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:loadBalancer.armor.rateLimitIntervalSec", "7")


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch root with copies of the real stack files and environments/."""
    for name in ("Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    return tmp_path


def test_bad_alert_threshold_names_the_environment_file(repo_copy: Path):
    path = repo_copy / "environments" / "prod" / "alerts.yaml"
    data = yaml.safe_load(path.read_text())
    data["alerts"]["sql_cpu"]["threshold"] = 80  # a percentage where a fraction is expected
    path.write_text(yaml.safe_dump(data))
    capture = run_stack("prod", root=repo_copy)
    _assert_rejected(capture, "environments/prod/alerts.yaml", "alerts.sql_cpu.threshold", "fraction")


def test_invalid_yaml_names_the_file(repo_copy: Path):
    (repo_copy / "Pulumi.dev.yaml").write_text("config:\n  gcp:project: [unclosed\n")
    capture = run_stack("dev", root=repo_copy)
    assert isinstance(capture.error, ConfigError)
    assert str(capture.error).startswith("Pulumi.dev.yaml: not valid YAML")
    assert capture.registrations == []


def test_secure_values_do_not_break_offline_loading(repo_copy: Path):
    """An encrypted value (``pulumi config set --secret``) loads offline as ``[secret]``."""
    path = repo_copy / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["print-platform:loadBalancer"]["iap"].update(
        oauthClientId="1234-abc.apps.googleusercontent.com",
        oauthClientSecret={"secure": "v1:AAAABBBBCCCC:ZZZZ"},
    )
    path.write_text(yaml.safe_dump(doc))
    config, secret_keys = read_stack_file("prod", repo_copy)
    assert secret_keys == ["print-platform:loadBalancer"]
    capture = run_stack("prod", root=repo_copy)
    assert capture.error is None, capture.error
    iap = capture.platform.settings.config.load_balancer.iap
    assert iap.oauth_client_secret.get_secret_value() == "[secret]"
    assert "v1:AAAABBBBCCCC" not in repr(iap)


def test_preview_cli_reports_config_errors_with_exit_status_2(repo_copy: Path):
    path = repo_copy / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("gcp:region: europe-west1", "gcp:region: mars-north1"))
    done = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--stack", "dev", "--root", str(repo_copy)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "error: Pulumi.dev.yaml: gcp:region: unknown region 'mars-north1' "
        "(see https://cloud.google.com/about/locations)"
    )


def _iap(stack: str, **changes: Any):
    return _run_with(stack, lambda c: c["print-platform:loadBalancer"]["iap"].update(**changes))


def test_iap_on_without_members_locks_everyone_out_and_is_rejected():
    capture = _iap("prod", members=[])
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:loadBalancer.iap.members",
                     "required when IAP is enabled")
    capture = _run_with("prod", lambda c: c["print-platform:loadBalancer"]["iap"].pop("members"))
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:loadBalancer.iap.members", "required")


@pytest.mark.parametrize("member", ["ada@example.com", "domain:example.com", "allUsers", "allAuthenticatedUsers",
                                    "user:not-an-email", "group:", "serviceaccount:ci@p.iam.gserviceaccount.com"])
def test_iap_member_must_be_a_named_principal(member):
    capture = _iap("prod", members=["group:ops@example.com", member])
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:loadBalancer.iap.members",
                     repr(member), "group:<email>")


def test_iap_members_are_distinct():
    capture = _iap("prod", members=["user:ada@example.com", "user:ada@example.com"])
    _assert_rejected(capture, "Pulumi.prod.yaml", "print-platform:loadBalancer.iap.members", "duplicate")


def test_iap_members_while_off_grant_nothing():
    """Members listed in a stack with IAP off (e.g. prepared before switching it on) are not granted."""
    capture = _iap("dev", members=["group:devs@example.com"])
    assert capture.error is None, capture.error
    assert not capture.of_type("gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember")


def test_three_mistakes_are_three_lines_one_with_did_you_mean():
    """A typo'd key, a bad CIDR and a wrong enum: every problem at once, one line each, before any resource."""
    def three(c):
        database = c["print-platform:database"]
        database["backupStartTme"] = database.pop("backupStartTime", "02:00")
        c["print-platform:network"]["podsCidr"] = "10.112.0.0/33"
        c["print-platform:gke"]["releaseChannel"] = "RAPID"
    capture = _run_with("prod", three)
    assert isinstance(capture.error, ConfigError), repr(capture.error)
    lines = str(capture.error).split("\n")
    assert lines == capture.error.problems
    assert len(lines) == 3, lines
    by_key = {line.split(": ")[1]: line for line in lines}
    assert set(by_key) == {"print-platform:database.backupStartTme", "print-platform:network.podsCidr",
                           "print-platform:gke.releaseChannel"}
    assert all(line.startswith("Pulumi.prod.yaml: ") for line in lines)
    assert "did you mean `backupStartTime`?" in by_key["print-platform:database.backupStartTme"]
    assert "10.112.0.0/33" in by_key["print-platform:network.podsCidr"]
    assert "RAPID" in by_key["print-platform:gke.releaseChannel"]
    assert [r.urn for r in capture.registrations if r.type != STACK_TYPE] == []


def test_typo_of_a_required_key_names_the_typo_and_the_missing_key():
    def typo(c):
        c["print-platform:database"]["teir"] = c["print-platform:database"].pop("tier")
    capture = _run_with("dev", typo)
    assert capture.error.problems == [
        "Pulumi.dev.yaml: print-platform:database.tier: missing (required key)",
        "Pulumi.dev.yaml: print-platform:database.teir: unknown key; did you mean `tier`? (see docs/infra.md)",
    ]


def test_typo_of_a_top_level_key_names_the_closest_key():
    capture = _run_with("dev", lambda c: c.update({"print-platform:databse": {"tier": "db-f1-micro"}}))
    assert "did you mean `print-platform:database`?" in str(capture.error)


def test_preview_cli_prints_every_problem_on_its_own_line(repo_copy: Path):
    path = repo_copy / "Pulumi.dev.yaml"
    text = path.read_text().replace("gcp:region: europe-west1", "gcp:region: mars-north1")
    path.write_text(text.replace("releaseChannel: REGULAR", "releaseChannel: RAPID"))
    done = subprocess.run(
        [sys.executable, "-m", "tools.preview", "--stack", "dev", "--root", str(repo_copy)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().split("\n")
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: Pulumi.dev.yaml: gcp:region: unknown region 'mars-north1'")
    assert lines[1].startswith("error: Pulumi.dev.yaml: print-platform:gke.releaseChannel: ")


def test_environment_values_problems_are_reported_with_the_stack_file_before_any_resource(repo_copy: Path):
    """A typo'd key and a stack-owned key in environments/dev/extractor.yaml, a wrong enum in the stack file:
    three lines, one run, nothing registered."""
    values = repo_copy / "environments" / "dev" / "extractor.yaml"
    values.write_text(values.read_text() + "replicaCont: 2\nimage:\n  digest: sha256:" + "c" * 64 + "\n")
    stack_file = repo_copy / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("releaseChannel: REGULAR", "releaseChannel: RAPID"))
    capture = run_stack("dev", root=repo_copy)
    assert isinstance(capture.error, ConfigError), repr(capture.error)
    lines = capture.error.problems
    assert len(lines) == 3, lines
    assert lines[0].startswith("Pulumi.dev.yaml: print-platform:gke.releaseChannel: ")
    assert lines[1].startswith("environments/dev/extractor.yaml: (top level): Additional properties are not allowed ('replicaCont'")
    assert lines[2].startswith("environments/dev/extractor.yaml: image.digest: is set by the stack")
    assert [r.urn for r in capture.registrations if r.type != STACK_TYPE] == []
