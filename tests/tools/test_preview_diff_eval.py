"""How the plan diff evaluates a tree: exported commits, import isolation, missing tools, failures.

These run git and Python subprocesses on small temporary repositories (no Pulumi program).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tools.preview_diff import (
    EvaluationError,
    Tree,
    UsageError,
    _run_tool,
    evaluate,
    exported_tree,
    main,
    resolve_ref,
    run_preview,
)

pytestmark = pytest.mark.slow

FAKE_PREVIEW = '''
import argparse, json, os
parser = argparse.ArgumentParser()
parser.add_argument("--stack")
parser.add_argument("--format")
args = parser.parse_args()
resources = json.load(open(os.path.join(os.path.dirname(__file__), "resources.json")))
print(json.dumps({"stack": args.stack, "resources": resources, "outputs": {}}))
'''

FAKE_RENDER = '''
import argparse, json, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--stack")
args = parser.parse_args()
root = pathlib.Path(__file__).resolve().parent.parent
out = root / "build" / "rendered" / args.stack
out.mkdir(parents=True, exist_ok=True)
replicas = json.load(open(root / "tools" / "resources.json"))[0]["inputs"].get("replicas", 1)
(out / "files-api.yaml").write_text(f"kind: Deployment\\nspec:\\n  replicas: {replicas}\\n")
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def fake_repo(path: Path, replicas: int = 2, with_render: bool = True) -> Path:
    """A tiny repository whose tools/preview.py prints a fixed document (one Release)."""
    (path / "infra").mkdir(parents=True)
    (path / "infra" / "__init__.py").write_text("")
    (path / "tools").mkdir()
    (path / "tools" / "__init__.py").write_text("")
    (path / "tools" / "preview.py").write_text(FAKE_PREVIEW)
    if with_render:
        (path / "tools" / "render.py").write_text(FAKE_RENDER)
    write_resources(path, replicas)
    git(path.parent, "init", "-q", str(path))
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base")
    return path


def write_resources(path: Path, replicas: int) -> None:
    release = {
        "urn": "urn:pulumi:prod::p::kubernetes:helm.sh/v3:Release::files-api",
        "type": "kubernetes:helm.sh/v3:Release",
        "name": "files-api",
        "parent": "",
        "provider": "",
        "protect": False,
        "dependencies": [],
        "inputs": {"replicas": replicas},
    }
    (path / "tools" / "resources.json").write_text(json.dumps([release]))


def test_the_evaluated_tree_imports_its_own_packages_not_the_editable_install(tmp_path):
    tree = tmp_path / "tree"
    (tree / "infra").mkdir(parents=True)
    (tree / "infra" / "__init__.py").write_text("")
    (tree / "tools").mkdir()
    (tree / "tools" / "__init__.py").write_text("")
    (tree / "tools" / "whoami.py").write_text("import infra, tools.whoami as me\nprint(infra.__file__)\nprint(me.__file__)\n")
    out = _run_tool(Tree(tree, "tmp", "base"), "tools.whoami", [], __import__("sys").executable)
    for line in out.splitlines():
        assert Path(line).resolve().is_relative_to(tree.resolve()), line


def test_a_tree_without_the_offline_preview_is_reported_not_crashed(tmp_path):
    (tmp_path / "tools").mkdir()
    assert run_preview(Tree(tmp_path, "old", "base"), "prod") is None
    result = evaluate(Tree(tmp_path, "`old`", "base"), "prod", render=True)
    assert result.document is None and "has no `tools/preview.py`" in result.notes[0]


def test_a_failing_preview_raises_with_the_tree_and_stderr(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    (repo / "tools" / "preview.py").write_text("import sys\nsys.exit('config error: print-platform:database.tier is bad')\n")
    with pytest.raises(EvaluationError, match=r"head: `python -m tools.preview --stack prod --format json` exited with 1"):
        run_preview(Tree(repo, "wt", "head"), "prod")
    with pytest.raises(EvaluationError, match="database.tier is bad"):
        run_preview(Tree(repo, "wt", "head"), "prod")


def test_exported_tree_is_the_commit_not_the_working_tree(tmp_path):
    repo = fake_repo(tmp_path / "repo", replicas=2)
    write_resources(repo, 3)  # uncommitted
    with exported_tree(repo, resolve_ref(repo, "HEAD")) as base:
        assert json.loads((base / "tools" / "resources.json").read_text())[0]["inputs"]["replicas"] == 2
        assert not (base / ".git").exists()
    assert not base.exists(), "the temporary tree is removed"


def test_unknown_ref_is_a_usage_error(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    with pytest.raises(UsageError, match="unknown git ref 'origin/nope'.*git fetch"):
        resolve_ref(repo, "origin/nope")
    assert main(["--stack", "prod", "--base", "origin/nope", "--repo", str(repo)]) == 2


def test_cli_end_to_end_on_the_working_tree(tmp_path, capsys):
    repo = fake_repo(tmp_path / "repo", replicas=2)
    assert main(["--stack", "prod", "--base", "HEAD", "--repo", str(repo)]) == 0
    clean = capsys.readouterr().out
    assert "**No changes.**" in clean and "working tree at" in clean and "uncommitted" not in clean

    write_resources(repo, 3)
    output = tmp_path / "out" / "prod.md"
    assert main(["--stack", "prod", "--base", "HEAD", "--repo", str(repo), "--output", str(output)]) == 0
    report = output.read_text()
    assert "## Preview diff: `prod` +0 ~1 -0" in report
    assert "~ replicas: 2 -> 3" in report
    assert "with uncommitted changes" in report
    assert "-  replicas: 2\n+  replicas: 3" in report, "the rendered manifests of both sides are diffed"


def test_cli_base_without_render_tool_notes_it(tmp_path):
    repo = fake_repo(tmp_path / "repo", with_render=False)
    (repo / "tools" / "render.py").write_text(FAKE_RENDER)
    assert main(["--stack", "dev", "--base", "HEAD", "--repo", str(repo), "--output", str(tmp_path / "r.md")]) == 0
    report = (tmp_path / "r.md").read_text()
    assert "The base (" in report and "has no `tools/render.py`: manifests not compared." in report


def test_cli_failure_exits_1_with_a_failure_report(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    (repo / "tools" / "preview.py").write_text("raise SystemExit('boom in the head')\n")
    out = tmp_path / "r.md"
    assert main(["--stack", "prod", "--base", "HEAD", "--repo", str(repo), "--output", str(out)]) == 1
    report = out.read_text()
    assert "`prod` failed" in report and "boom in the head" in report


@pytest.mark.parametrize("stack", ["../etc", "prod dev", "", ".hidden", "a/b"])
def test_a_bad_stack_name_is_rejected_before_anything_runs(tmp_path, stack, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--stack", stack, "--base", "HEAD", "--repo", str(tmp_path)])
    assert info.value.code == 2
    assert "is not a stack name" in capsys.readouterr().err


def test_a_render_that_writes_no_directory_means_no_releases(tmp_path):
    repo = fake_repo(tmp_path / "repo")
    (repo / "tools" / "render.py").write_text("print('no releases')\n")
    result = evaluate(Tree(repo, "wt", "head"), "prod", render=True)
    assert result.manifests == {}


# A render.py that takes --preview-json (as tools/render.py does): it must be
# handed the document the preview diff already has, not run the preview again.
FAKE_RENDER_PREVIEW_JSON = '''
import argparse, json, pathlib, sys
parser = argparse.ArgumentParser()
parser.add_argument("--stack")
parser.add_argument("--preview-json", type=pathlib.Path)
args = parser.parse_args()
if args.preview_json is None:
    sys.exit("render: expected --preview-json")
document = json.loads(args.preview_json.read_text())
out = pathlib.Path(__file__).resolve().parent.parent / "build" / "rendered" / args.stack
out.mkdir(parents=True, exist_ok=True)
replicas = document["resources"][0]["inputs"]["replicas"]
(out / "files-api.yaml").write_text(f"stack: {document['stack']}\\nreplicas: {replicas}\\n")
'''


def test_a_render_with_preview_json_gets_the_evaluated_document(tmp_path):
    repo = fake_repo(tmp_path / "repo", replicas=4)
    (repo / "tools" / "render.py").write_text(FAKE_RENDER_PREVIEW_JSON)
    result = evaluate(Tree(repo, "wt", "head"), "prod", render=True)
    assert result.manifests == {"files-api": "stack: prod\nreplicas: 4\n"}
