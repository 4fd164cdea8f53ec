"""The plan diff of the real program on real changes, in a temporary git repository.

The repository is a copy of this working tree (tracked and untracked, not
ignored files) committed as the base: the committed prod stack, whose two Helm
releases deploy the images the program builds (digest unknown offline). Each
scenario is a commit on top of the base:

- a Helm values change (environments/prod/extractor.yaml),
- a stack config change that touches a protected resource (the Cloud SQL tier),
- a service source change (its image is rebuilt under a new content tag),
- a pinned digest (the files-api image is no longer built; its release deploys
  the pinned digest and its manifests go from `make render`'s placeholder to it),
- no change to the infrastructure (a docs edit).

Evaluations are the slow part (each is the whole program under Pulumi mocks,
plus `helm template`), so the base is evaluated once and shared; the command
line is exercised once, on an uncommitted working-tree change.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.plan_diff import HELM_RELEASE_TYPE, diff_documents
from tools.plan_diff_manifests import diff_manifests
from tools.plan_diff_report import render_report
from tools.preview_diff import Evaluation, Tree, evaluate, exported_tree, main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STACK = "prod"
FILES_API_DIGEST = "sha256:" + "b" * 64


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` in `path`; fails the test when `old` is not there exactly once."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name}: expected exactly one {old!r} (the scenario needs updating)"
    path.write_text(text.replace(old, new))


def set_images(repo: Path, images: dict[str, str]) -> None:
    path = repo / f"Pulumi.{STACK}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["print-platform:images"] = {service: {"digest": digest} for service, digest in images.items()}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    if not (ROOT / "tools" / "preview.py").is_file() or not (ROOT / "tools" / "render.py").is_file():
        pytest.fail("tools/preview.py and tools/render.py are needed for the scenario tests")
    path = tmp_path_factory.mktemp("scenarios") / "repo"
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(path.parent, "init", "-q", "-b", "main", str(path))
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    # The pinned helm (and uv) of this working tree, as `make helm` would install them.
    (path / ".tools").symlink_to(ROOT / ".tools", target_is_directory=True)
    with open(path / ".git" / "info" / "exclude", "a") as exclude:
        exclude.write(".tools\n")
    return path


def scenario(repo: Path, name: str, change) -> str:
    """Commit `change(repo)` on a branch `name` from main; return the commit SHA; back on main."""
    git(repo, "checkout", "-q", "-b", name, "main")
    change(repo)
    git(repo, "commit", "-qam", name)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


def evaluate_commit(repo: Path, sha: str) -> Evaluation:
    with exported_tree(repo, sha) as tree:
        return evaluate(Tree(tree, f"`{sha[:7]}`", "head"), STACK, render=True)


@pytest.fixture(scope="module")
def base(repo) -> Evaluation:
    return evaluate_commit(repo, git(repo, "rev-parse", "main"))


def report_for(base: Evaluation, head: Evaluation):
    diff = diff_documents(base.document, head.document)
    manifests = diff_manifests(base.manifests, head.manifests)
    report = render_report(diff, base_label="`main`", head_label="scenario", manifests=manifests)
    return diff, manifests, report


def test_base_renders_both_releases(base):
    assert base.document is not None and base.manifests, "the base must have rendered releases"
    releases = [r for r in base.document["resources"] if r["type"] == HELM_RELEASE_TYPE]
    assert sorted(r["name"] for r in releases) == ["extractor", "files-api"]
    assert all(r["inputs"]["values"]["image"]["digest"] == "[unknown]" for r in releases)
    assert len(base.manifests) == 2


def test_values_change_shows_the_values_path_and_the_manifest_diff(repo, base):
    sha = scenario(repo, "values", lambda r: replace_once(r / "environments/prod/extractor.yaml", "logLevel: INFO", "logLevel: DEBUG"))
    diff, manifests, report = report_for(base, evaluate_commit(repo, sha))
    assert diff.summary == "+0 ~1 -0", report
    (change,) = diff.changes
    assert change.type == HELM_RELEASE_TYPE
    assert [(p.path, p.old, p.new) for p in change.properties] == [("values.app.logLevel", "INFO", "DEBUG")]
    changed = [m for m in manifests if m.status == "changed"]
    assert len(changed) == 1 and changed[0].added >= 1 and changed[0].removed >= 1
    plus = [line for line in changed[0].lines if line.startswith("+") and not line.startswith("+++")]
    assert any("DEBUG" in line for line in plus), changed[0].lines
    assert '~ values.app.logLevel: "INFO" -> "DEBUG"' in report
    assert "[!WARNING]" not in report, "a values change touches no protected or stateful resource"


def test_config_change_on_a_protected_resource_is_called_out(repo, base):
    sha = scenario(repo, "tier", lambda r: replace_once(r / f"Pulumi.{STACK}.yaml", "tier: db-custom-2-7680", "tier: db-custom-4-15360"))
    diff, manifests, report = report_for(base, evaluate_commit(repo, sha))
    database = [c for c in diff.changes if c.type == "gcp:sql/databaseInstance:DatabaseInstance"]
    assert len(database) == 1 and database[0].op == "update" and database[0].protected and database[0].stateful
    assert ("settings.tier", "db-custom-2-7680", "db-custom-4-15360") in [(p.path, p.old, p.new) for p in database[0].properties]
    assert report.index("[!WARNING]") < report.index("### Resources")
    callout = report[report.index("[!WARNING]"):report.index("### Resources")]
    assert "gcp:sql/databaseInstance:DatabaseInstance" in callout and "protected, stateful" in callout
    assert "`settings.tier`" in callout


def test_pinned_digest_replaces_the_build_and_updates_the_release(repo, base):
    sha = scenario(repo, "pin", lambda r: set_images(r, {"files-api": FILES_API_DIGEST}))
    diff, manifests, report = report_for(base, evaluate_commit(repo, sha))
    assert diff.summary == "+0 ~1 -1", report
    (deleted,) = [c for c in diff.changes if c.op == "delete"]
    assert deleted.type == "docker-build:index:Image" and deleted.name == "files-api"
    (release,) = [c for c in diff.changes if c.op == "update"]
    assert release.type == HELM_RELEASE_TYPE and release.name == "files-api"
    assert [(p.path, p.old, p.new) for p in release.properties] == [
        ("values.image.digest", "[unknown]", FILES_API_DIGEST)]
    # make render renders a digest the program has not built yet with the placeholder
    # (docs/seams.md), so the release's manifests change from it to the pinned one.
    (files_api,) = [m for m in manifests if "files-api" in m.release]
    assert files_api.status == "changed", files_api
    assert any(FILES_API_DIGEST in line for line in files_api.lines if line.startswith("+"))
    assert any("sha256:" + "0" * 64 in line for line in files_api.lines if line.startswith("-"))
    assert FILES_API_DIGEST in report


def test_a_source_change_rebuilds_only_that_image(repo, base):
    cli = "apps/extractor/src/extractor/cli.py"
    sha = scenario(repo, "source", lambda r: (r / cli).write_text((r / cli).read_text() + "\n# touched\n"))
    diff, manifests, report = report_for(base, evaluate_commit(repo, sha))
    assert diff.summary == "+0 ~1 -0", report
    (change,) = diff.changes
    assert change.type == "docker-build:index:Image" and change.name == "extractor"
    assert {p.path for p in change.properties} == {"tags[0]", 'labels["org.opencontainers.image.version"]',
                                                   "context.location"}, "the content tag names the tag and the staged context"
    assert all(m.status == "unchanged" for m in manifests), "the digest stays computed on both sides"


def test_a_change_outside_the_infrastructure_is_no_change(repo, base):
    # (Not README.md: the Dockerfiles copy it into the images.)
    sha = scenario(repo, "docs", lambda r: (r / "docs/chart.md").write_text((r / "docs/chart.md").read_text() + "\nA note.\n"))
    diff, manifests, report = report_for(base, evaluate_commit(repo, sha))
    assert diff.changes == () and all(m.status == "unchanged" for m in manifests)
    assert "**No changes.**" in report and "**Summary (prod): +0 ~0 -0**" in report


def test_command_line_on_an_uncommitted_change(repo, capsys):
    replace_once(repo / "environments/prod/extractor.yaml", "replicaCount: 2", "replicaCount: 3")
    try:
        code = main(["--stack", STACK, "--base", "main", "--repo", str(repo)])
    finally:
        git(repo, "checkout", "--", "environments/prod/extractor.yaml")
    report = capsys.readouterr().out
    assert code == 0, report
    assert "with uncommitted changes" in report
    assert "~ values.replicaCount: 3 -> 3" not in report
    assert "~ values.replicaCount: 2 -> 3" in report
    assert "**Summary (prod): +0 ~1 -0**" in report
