"""Benchmark: wall time of the offline preview of a stack (and, optionally, of the whole plan diff).

Usage (from the repository root)::

    python -m tools.bench_preview [--stack prod] [--runs 5] [--diff-base HEAD] [--json]

Each run is a fresh subprocess, as `make preview` and the plan diff run it
(``python -m tools.preview --stack <stack> --format json``), so the figure
includes interpreter start-up and the import of pulumi, pulumi-gcp and
pulumi-kubernetes. ``--diff-base REF`` additionally times one full plan diff
(``python -m tools.preview_diff --stack <stack> --base REF``: two previews in
parallel plus two renders). Prints min / median / max in seconds and the
resource count; exits 1 when a run fails.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent


def time_command(command: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Run `command` in `cwd`; return (wall seconds, stdout). RuntimeError with stderr on failure."""
    started = time.perf_counter()
    result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def bench_preview(stack: str, runs: int, python: str = sys.executable) -> dict:
    """Time `runs` offline previews of `stack`.

    Returns ``{"stack", "runs", "seconds": [..], "min", "median", "max", "resources"}``
    (seconds, wall clock). Raises RuntimeError when a preview fails.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    times: list[float] = []
    resources = 0
    for _ in range(runs):
        elapsed, out = time_command([python, "-m", "tools.preview", "--stack", stack, "--format", "json"], ROOT)
        times.append(elapsed)
        resources = len(json.loads(out)["resources"])
    return {
        "stack": stack,
        "runs": runs,
        "seconds": [round(t, 3) for t in times],
        "min": round(min(times), 3),
        "median": round(statistics.median(times), 3),
        "max": round(max(times), 3),
        "resources": resources,
    }


def bench_diff(stack: str, base: str, python: str = sys.executable) -> float:
    """Wall seconds of one full plan diff of `stack` against `base` (report discarded)."""
    elapsed, _ = time_command([python, "-m", "tools.preview_diff", "--stack", stack, "--base", base], ROOT)
    return round(elapsed, 3)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; 0 on success, 1 when a run failed."""
    parser = argparse.ArgumentParser(prog="bench_preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--diff-base", help="also time one plan diff against this git ref")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        figures = bench_preview(args.stack, args.runs)
        if args.diff_base:
            figures["diff_seconds"] = bench_diff(args.stack, args.diff_base)
    except (RuntimeError, ValueError) as exc:
        print(f"bench_preview: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"offline preview of {figures['stack']} ({figures['resources']} resources), {figures['runs']} runs: "
            f"min {figures['min']:.2f} s, median {figures['median']:.2f} s, max {figures['max']:.2f} s"
        )
        if "diff_seconds" in figures:
            print(f"plan diff of {figures['stack']} against {args.diff_base}: {figures['diff_seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
