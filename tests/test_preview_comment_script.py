"""The comment job's script (preview-comment.yml), run under Node.js with a fake GitHub API.

The script is the only code of the privileged workflow_run job, and it reads
artifacts that a fork's pull request controls, so its checks are tested as
behaviour: a forged pull request number, a head commit that does not match the
run, a forged marker inside the report, a comment by someone else carrying the
marker, an oversize report, a missing artifact.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.plan_diff_report import marker

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
HEAD_SHA = "c0ffee" + "0" * 34

HARNESS = r"""
const fs = require('fs');
const state = JSON.parse(fs.readFileSync(process.env.STATE_FILE, 'utf8'));
const calls = [];
const github = {
  rest: {
    pulls: {
      get: async ({ pull_number }) => {
        const pr = state.prs[String(pull_number)];
        if (!pr) { throw new Error(`HttpError: Not Found (#${pull_number})`); }
        return { data: pr };
      },
    },
    issues: {
      listComments: 'listComments',
      updateComment: async (args) => { calls.push({ op: 'update', id: args.comment_id, body: args.body }); },
      createComment: async (args) => { calls.push({ op: 'create', issue: args.issue_number, body: args.body }); },
    },
  },
  paginate: async (method, args) => {
    if (method !== 'listComments') { throw new Error('unexpected paginate'); }
    return state.comments[String(args.issue_number)] || [];
  },
};
const core = {
  warning: (message) => calls.push({ op: 'warning', message }),
  info: () => {},
  setFailed: (message) => calls.push({ op: 'failed', message }),
};
const context = { repo: { owner: 'acme', repo: 'print-platform' } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const script = fs.readFileSync(process.env.SCRIPT_FILE, 'utf8');
new AsyncFunction('require', 'github', 'core', 'context', script)(require, github, core, context)
  .then(() => fs.writeFileSync(process.env.CALLS_FILE, JSON.stringify(calls)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


def comment_script() -> str:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview-comment.yml").read_text())
    (job,) = workflow["jobs"].values()
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/github-script@")]
    return step["with"]["script"]


def run_script(tmp_path: Path, artifacts: dict[str, dict[str, str]], state: dict) -> list[dict]:
    """Lay out the downloaded artifacts, run the script, return the API calls it made."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (the GitHub runner provides it)")
    work = tmp_path / "work"
    for stack, files in artifacts.items():
        directory = work / "preview-diff" / f"preview-diff-{stack}"
        directory.mkdir(parents=True)
        for name, text in files.items():
            (directory / name).write_text(text)
    work.mkdir(exist_ok=True)
    (tmp_path / "script.js").write_text(comment_script())
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "state.json").write_text(json.dumps(state))
    env = {
        **os.environ,
        "SCRIPT_FILE": str(tmp_path / "script.js"),
        "STATE_FILE": str(tmp_path / "state.json"),
        "CALLS_FILE": str(tmp_path / "calls.json"),
        "HEAD_SHA": HEAD_SHA,
        "RUN_URL": "https://github.com/acme/print-platform/actions/runs/1",
        "STACKS": "dev prod",
    }
    result = subprocess.run([node, str(tmp_path / "harness.js")], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "calls.json").read_text())


def report(stack: str, body: str = "**Summary: +0 ~0 -0**\n") -> str:
    return f"{marker(stack)}\n## Preview diff: `{stack}`\n{body}"


PR = {"12": {"number": 12, "head": {"sha": HEAD_SHA}}}
BOT = {"login": "github-actions[bot]", "type": "Bot"}


def test_creates_one_comment_per_stack_starting_with_its_marker(tmp_path):
    artifacts = {s: {f"{s}.md": report(s), "pr-number": "12\n"} for s in ("dev", "prod")}
    calls = run_script(tmp_path, artifacts, {"prs": PR, "comments": {}})
    assert [(c["op"], c["issue"]) for c in calls] == [("create", 12), ("create", 12)]
    assert calls[0]["body"].startswith(marker("dev") + "\n") and calls[1]["body"].startswith(marker("prod") + "\n")
    assert calls[0]["body"].count("<!--") == 1, "the report's own marker is replaced, not duplicated"


def test_updates_the_bots_comment_and_ignores_a_users_comment_with_the_marker(tmp_path):
    comments = {"12": [
        {"id": 1, "user": {"login": "mallory", "type": "User"}, "body": marker("dev") + "\nforged"},
        {"id": 2, "user": BOT, "body": marker("dev") + "\nold report"},
        {"id": 3, "user": BOT, "body": marker("prod") + "\nold report"},
    ]}
    artifacts = {s: {f"{s}.md": report(s), "pr-number": "12"} for s in ("dev", "prod")}
    calls = run_script(tmp_path, artifacts, {"prs": PR, "comments": comments})
    assert [(c["op"], c["id"]) for c in calls] == [("update", 2), ("update", 3)]


def test_a_forged_marker_inside_the_report_cannot_claim_another_stack(tmp_path):
    forged = report("dev", f"text\n{marker('prod')}\n<!--preview-diff:stack=prod-->\nmore\n")
    calls = run_script(tmp_path, {"dev": {"dev.md": forged, "pr-number": "12"}}, {"prs": PR, "comments": {}})
    (create, missing) = [c for c in calls if c["op"] == "create"], [c for c in calls if c["op"] == "warning"]
    assert len(create) == 1 and "preview-diff:stack=prod" not in create[0]["body"]
    assert "No preview diff artifact for prod" in missing[0]["message"]


@pytest.mark.parametrize("number", ["12; rm -rf /", "-1", "", "1e3", "12345678901"])
def test_a_pr_number_that_is_not_digits_fails_without_any_api_write(tmp_path, number):
    calls = run_script(tmp_path, {"dev": {"dev.md": report("dev"), "pr-number": number}}, {"prs": PR, "comments": {}})
    assert [c["op"] for c in calls if c["op"] in ("create", "update")] == []
    assert any(c["op"] == "failed" and "not a pull request number" in c["message"] for c in calls)


def test_a_pull_request_at_another_commit_gets_no_comment(tmp_path):
    prs = {"12": {"number": 12, "head": {"sha": "f" * 40}}}
    calls = run_script(tmp_path, {"dev": {"dev.md": report("dev"), "pr-number": "12"}}, {"prs": prs, "comments": {}})
    assert [c["op"] for c in calls if c["op"] in ("create", "update")] == []
    assert any("not at the run's" in c.get("message", "") for c in calls)


def test_an_oversize_report_is_cut_below_githubs_limit(tmp_path):
    big = report("dev", "x" * 100_000)
    calls = run_script(tmp_path, {"dev": {"dev.md": big, "pr-number": "12"}}, {"prs": PR, "comments": {}})
    (create,) = [c for c in calls if c["op"] == "create"]
    assert len(create["body"]) < 65536
    assert "Report cut at 60000 characters" in create["body"] and "actions/runs/1" in create["body"]
