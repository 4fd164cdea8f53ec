"""Offline plan diff: what a change does to a stack, as a Markdown report for pull requests.

Usage (from the repository root; `make preview-diff STACK=<stack> BASE=<ref>`)::

    python -m tools.preview_diff --stack prod --base origin/main [--stack dev]
        [--output build/preview-diff/prod.md] [--no-render] [--max-diff-lines 400]

For each stack it evaluates the program twice, in subprocesses (Pulumi's mock
runtime is process-global state):

- at BASE: the committed tree of the ref, exported with ``git archive`` into a
  temporary directory, running *that tree's own* ``tools/preview.py`` (and
  ``tools/render.py`` for the Helm manifests) with the current interpreter;
- at the head: the working tree as it is, uncommitted changes included.

It then diffs the two preview documents by URN (tools/plan_diff.py), diffs the
rendered manifests of each Helm release (tools/plan_diff_manifests.py), runs
each tree's own monthly cost estimate (tools/cost, docs/cost.md) and prints the
report (tools/plan_diff_report.py). No Pulumi CLI, no credentials,
no network.

Exit codes: 0 when every stack was evaluated at both sides (with or without
changes; a base older than the offline preview counts as evaluated, reported
as such); 1 when a preview or render failed (the report then says why);
2 for bad usage (unknown ref, not a git repository).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from tools.plan_diff import PreviewDocumentError, diff_documents
from tools.plan_diff_manifests import ManifestDiff, ManifestError, diff_manifests, read_rendered
from tools.plan_diff_report import code, render_failure, render_report

ROOT = Path(__file__).resolve().parent.parent
PREVIEW_MODULE = "tools.preview"
RENDER_MODULE = "tools.render"
COST_MODULE = "tools.cost"
RENDERED_DIR = Path("build") / "rendered"
"""Where `make render` writes, relative to a tree: ``build/rendered/<stack>/<release>.yaml``."""
STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""A Pulumi stack name (letters, digits, ``-``, ``_``, ``.``); it becomes a path segment and a marker."""
TIMEOUT_SECONDS = 900
"""Upper bound for one preview or render subprocess."""
SHARED_TOOL_DIRS = (".tools",)
"""Directories of the working tree linked into an exported base tree: the pinned helm and uv live there."""

# Runs inside the evaluated tree: checks that the tree's own packages are the
# ones imported (not the editable install of the working tree in .venv), then
# runs the tool's __main__ with the remaining arguments.
_BOOTSTRAP = r"""
import pathlib, runpy, sys
tree = pathlib.Path(sys.argv[1]).resolve()
module = sys.argv[2]
import infra, tools
for package in (infra, tools):
    where = pathlib.Path(package.__file__).resolve()
    if tree not in where.parents:
        sys.exit(f"preview-diff: {package.__name__} was imported from {where}, not from the evaluated tree {tree}")
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


class EvaluationError(RuntimeError):
    """A preview or render of one tree failed; the message names the tree, the command and its stderr."""


class UsageError(RuntimeError):
    """Bad command-line input (unknown git ref, not a repository)."""


@dataclass(frozen=True)
class Tree:
    """A source tree to evaluate: `path` on disk and `label` (Markdown) for the report."""

    path: Path
    label: str
    name: str


@dataclass(frozen=True)
class Evaluation:
    """One side's result: the preview document (None when the tree has no offline
    preview) and the rendered manifests (None when they could not be rendered;
    `notes` says why) and the monthly cost estimate (None when the tree has
    no estimator or it failed; `notes` says which)."""

    document: dict[str, Any] | None
    manifests: dict[str, str] | None
    notes: tuple[str, ...]
    seconds: float
    cost: dict[str, Any] | None = None


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed in {repo}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout if binary else result.stdout.decode().strip()


def resolve_ref(repo: Path, ref: str) -> str:
    """The full commit SHA of `ref` in `repo`; UsageError with a hint when unknown."""
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except UsageError:
        hint = " (fetch it first, e.g. `git fetch origin main`)" if "/" in ref else ""
        raise UsageError(f"unknown git ref {ref!r} in {repo}{hint}") from None


@contextmanager
def exported_tree(repo: Path, sha: str) -> Iterator[Path]:
    """Export commit `sha` of `repo` (``git archive``) into a temporary directory; removed on exit.

    The working tree's SHARED_TOOL_DIRS (pinned helm, uv) are symlinked in, so
    the base's tools find the same binaries. Nothing in the repository's
    .git is written (no worktree, no index lock). Raises UsageError when git
    archive fails.
    """
    with tempfile.TemporaryDirectory(prefix="preview-diff-base-") as tmp:
        path = Path(tmp) / "tree"
        path.mkdir()
        with subprocess.Popen(
            ["git", "-C", str(repo), "archive", "--format=tar", sha],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as archive:
            assert archive.stdout is not None and archive.stderr is not None
            try:
                with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
                    tar.extractall(path, filter="data")
            except tarfile.TarError as exc:
                raise UsageError(f"git archive {sha} in {repo}: unreadable archive: {exc}") from None
            stderr = archive.stderr.read().decode(errors="replace").strip()
        if archive.returncode != 0:
            raise UsageError(f"git archive {sha} failed in {repo}: {stderr}")
        for name in SHARED_TOOL_DIRS:
            if (repo / name).is_dir() and not (path / name).exists():
                (path / name).symlink_to(repo / name, target_is_directory=True)
        yield path


def _run_tool(tree: Tree, module: str, args: Sequence[str], python: str) -> str:
    """Run `module` of `tree` with `args` (cwd and PYTHONPATH = the tree); return stdout.

    Raises EvaluationError with the command and the end of stderr on a
    non-zero exit or a timeout.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree.path), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [python, "-c", _BOOTSTRAP, str(tree.path), module, *args]
    shown = f"python -m {module} {' '.join(args)}"
    try:
        result = subprocess.run(
            command, cwd=tree.path, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise EvaluationError(f"{tree.name}: `{shown}` timed out after {TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        stderr = "\n".join(result.stderr.strip().splitlines()[-40:])
        raise EvaluationError(f"{tree.name}: `{shown}` exited with {result.returncode}:\n{stderr}")
    return result.stdout


def run_preview(tree: Tree, stack: str, python: str = sys.executable) -> dict[str, Any] | None:
    """The offline preview document of `stack` in `tree`, or None when the tree has no tools/preview.py.

    Raises EvaluationError when the preview fails or prints no JSON object.
    """
    if not (tree.path / "tools" / "preview.py").is_file():
        return None
    out = _run_tool(tree, PREVIEW_MODULE, ["--stack", stack, "--format", "json"], python)
    try:
        document = json.loads(out)
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{tree.name}: the preview of {stack!r} did not print JSON ({exc}): {out[:300]!r}") from None
    if not isinstance(document, dict):
        raise EvaluationError(f"{tree.name}: the preview of {stack!r} printed a {type(document).__name__}, not an object")
    return document


def run_render(
    tree: Tree, stack: str, python: str = sys.executable, document: dict[str, Any] | None = None
) -> Path | None:
    """Render `stack`'s Helm releases in `tree` (its own tools/render.py); the output directory.

    document: the tree's preview document of `stack`, already computed; handed
    to a render.py that takes ``--preview-json`` so the program is not
    evaluated a second time (an older render.py runs its own preview).
    Returns None when the tree has no tools/render.py. Raises EvaluationError
    when rendering fails.
    """
    script = tree.path / "tools" / "render.py"
    if not script.is_file():
        return None
    args = ["--stack", stack]
    with tempfile.TemporaryDirectory(prefix="preview-diff-doc-") as tmp:
        if document is not None and "--preview-json" in script.read_text(encoding="utf-8", errors="replace"):
            path = Path(tmp) / f"{stack}.json"
            path.write_text(json.dumps(document), encoding="utf-8")
            args += ["--preview-json", str(path)]
        _run_tool(tree, RENDER_MODULE, args, python)
    return tree.path / RENDERED_DIR / stack


def run_cost(tree: Tree, stack: str, document: dict[str, Any], python: str = sys.executable) -> dict[str, Any] | None:
    """The monthly cost estimate of `stack` in `tree` (its own tools/cost, docs/cost.md), from `document`.

    Returns None when the tree has no tools/cost (it predates the estimate).
    Raises EvaluationError when the estimator fails or prints no JSON object.
    """
    if not (tree.path / "tools" / "cost" / "__main__.py").is_file():
        return None
    with tempfile.TemporaryDirectory(prefix="preview-diff-cost-") as tmp:
        path = Path(tmp) / f"{stack}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        out = _run_tool(tree, COST_MODULE, ["--stack", stack, "--format", "json", "--preview-json", str(path)], python)
    try:
        estimate = json.loads(out)
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{tree.name}: the cost estimate of {stack!r} did not print JSON ({exc})") from None
    if not isinstance(estimate, dict):
        raise EvaluationError(f"{tree.name}: the cost estimate of {stack!r} is not a JSON object")
    return estimate


def evaluate(tree: Tree, stack: str, *, render: bool, python: str = sys.executable) -> Evaluation:
    """Preview (and render) `stack` in `tree`. Raises EvaluationError on failure."""
    started = time.monotonic()
    notes: list[str] = []
    document = run_preview(tree, stack, python)
    if document is None:
        notes.append(f"The {tree.name} ({tree.label}) has no `tools/preview.py`: it predates the offline preview.")
    manifests = None
    if render and document is not None:
        directory = run_render(tree, stack, python, document)
        if directory is None:
            notes.append(f"The {tree.name} ({tree.label}) has no `tools/render.py`: manifests not compared.")
        elif not directory.is_dir():
            manifests = {}  # rendered successfully, and the stack has no release
        else:
            try:
                manifests = read_rendered(directory)
            except ManifestError as exc:
                raise EvaluationError(f"{tree.name}: {exc}") from None
    cost = None
    if document is not None:
        try:
            cost = run_cost(tree, stack, document, python)
        except EvaluationError as exc:
            # The plan diff stands without it; say why the estimate is missing.
            notes.append(f"The {tree.name} ({tree.label}) has no cost estimate: {exc}")
    return Evaluation(document, manifests, tuple(notes), time.monotonic() - started, cost)


def _working_tree_label(repo: Path) -> str:
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=normal"))
    return f"working tree at {code(sha)}" + (" with uncommitted changes" if dirty else "")


def diff_stack(base: Tree, head: Tree, stack: str, *, render: bool, max_diff_lines: int) -> tuple[str, bool]:
    """Evaluate both trees for `stack` (in parallel) and return (Markdown report, ok)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {side.name: pool.submit(evaluate, side, stack, render=render) for side in (base, head)}
        results: dict[str, Evaluation | Exception] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except EvaluationError as exc:
                results[name] = exc
    errors = [str(r) for r in results.values() if isinstance(r, Exception)]
    head_eval = results[head.name]
    if not errors and isinstance(head_eval, Evaluation) and head_eval.document is None:
        errors.append(f"the {head.name} has no tools/preview.py: nothing to evaluate")
    if errors:
        return render_failure(stack, base_label=base.label, head_label=head.label, error="\n\n".join(errors)), False
    base_eval = results[base.name]
    assert isinstance(base_eval, Evaluation) and isinstance(head_eval, Evaluation)
    for side, result in ((base, base_eval), (head, head_eval)):
        print(f"preview-diff: {stack}: {side.name} evaluated in {result.seconds:.1f} s", file=sys.stderr)
    notes = [*base_eval.notes, *head_eval.notes]
    if base_eval.document is None:
        notes.append("Nothing to compare against: every resource of the head is shown as a create.")
    try:
        diff = diff_documents(base_eval.document, head_eval.document, base_label=base.name, head_label=head.name)
    except PreviewDocumentError as exc:
        return render_failure(stack, base_label=base.label, head_label=head.label, error=str(exc)), False
    manifests: list[ManifestDiff] | None = None
    if render and base_eval.manifests is not None and head_eval.manifests is not None:
        manifests = diff_manifests(base_eval.manifests, head_eval.manifests)
    report = render_report(
        diff,
        base_label=base.label,
        head_label=head.label,
        manifests=manifests,
        notes=notes,
        max_diff_lines=max_diff_lines,
        cost=(base_eval.cost, head_eval.cost),
    )
    return report, True


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="preview-diff", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append", required=True, help="stack to diff (repeatable)")
    parser.add_argument("--base", default="origin/main", help="git ref to compare against (default: origin/main)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="repository root (default: the current directory)")
    parser.add_argument("--output", type=Path, help="write the report here instead of stdout")
    parser.add_argument("--no-render", action="store_true", help="skip the Helm manifest diff")
    parser.add_argument("--max-diff-lines", type=int, default=400, help="manifest diff lines shown per release")
    args = parser.parse_args(argv)
    if args.max_diff_lines < 1:
        parser.error("--max-diff-lines must be at least 1")
    for stack in args.stack:
        if not STACK_NAME.fullmatch(stack):
            parser.error(f"--stack {stack!r} is not a stack name (letters, digits, '-', '_', '.')")
    repo = args.repo.resolve()
    try:
        top = Path(_git(repo, "rev-parse", "--show-toplevel")).resolve()
        sha = resolve_ref(top, args.base)
        head = Tree(top, _working_tree_label(top), "head")
        reports: list[str] = []
        ok = True
        with exported_tree(top, sha) as base_path:
            base = Tree(base_path, f"{code(args.base)} at {code(sha[:7])}", "base")
            for stack in dict.fromkeys(args.stack):
                report, stack_ok = diff_stack(
                    base, head, stack, render=not args.no_render, max_diff_lines=args.max_diff_lines
                )
                reports.append(report)
                ok = ok and stack_ok
    except UsageError as exc:
        print(f"preview-diff: {exc}", file=sys.stderr)
        return 2
    text = "\n".join(reports)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if not ok:
        print("preview-diff: evaluation failed; see the report", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
