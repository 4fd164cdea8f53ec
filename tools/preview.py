"""Offline ``pulumi preview``: run the real program under the mock runtime against the real stack file.

Usage::

    python -m tools.preview --stack dev [--format text|json]
    make preview STACK=prod FORMAT=json
    make -s preview STACK=bootstrap FORMAT=json   # the bootstrap program (infra/bootstrap)

``text`` prints the resource tree the way ``pulumi preview`` does (type, name, parent
by indentation, ``[protect]`` on protected resources), the stack outputs and a summary.
``json`` prints one document (docs/seams.md)::

    {"stack": ..., "resources": [{"urn", "type", "name", "parent", "provider",
     "protect", "dependencies", "inputs"}], "outputs": {...}}

with resources sorted by URN, keys in that order (sorted inside ``inputs`` and
``outputs``), secrets as ``"[secret]"`` — two runs of the
same tree give byte-identical output. No credentials, no Pulumi CLI.

Exit status: 0 on success, 2 on a configuration error (one line on stderr naming the
file and the key), 1 on any other program error.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from infra.bootstrap.settings import STACK as BOOTSTRAP_STACK
from infra.settings import ConfigError
from tools.mock_runtime import STACK_TYPE, Capture, Registration, run_stack


def render_json(capture: Capture) -> str:
    """The preview document as deterministic JSON (2-space indent, trailing newline).

    Top-level keys in the documented order (``stack``, ``resources``, ``outputs``) and
    each resource's keys in the documented order (``urn`` .. ``inputs``); inside
    ``inputs`` and ``outputs`` keys are sorted (``tools.mock_runtime`` normalises them).
    """
    return json.dumps(capture.as_document(), indent=2) + "\n"


def render_text(capture: Capture) -> str:
    """A ``pulumi preview``-style tree, outputs and summary."""
    children: dict[Optional[str], list[Registration]] = defaultdict(list)
    for reg in capture.registrations:
        children[reg.parent].append(reg)
    for regs in children.values():
        regs.sort(key=lambda r: (r.type, r.name))

    rows: list[tuple[str, str, str]] = []

    def walk(reg: Registration, prefix: str, last: bool, depth: int) -> None:
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        rows.append((prefix + branch + reg.type, reg.name, "[protect]" if reg.protect else ""))
        kids = children.get(reg.urn, [])
        child_prefix = prefix if depth == 0 else prefix + ("   " if last else "│  ")
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, depth + 1)

    for root in children.get(None, []):
        walk(root, "", True, 0)

    type_width = max((len(r[0]) for r in rows), default=4) + 2
    name_width = max((len(r[1]) for r in rows), default=4) + 2
    lines = [f"Previewing update ({capture.stack}) [offline: Pulumi mock runtime, no cloud]", ""]
    lines.append(f"     {'Type':<{type_width}}{'Name':<{name_width}}Plan")
    for type_col, name_col, flag in rows:
        lines.append(f" +   {type_col:<{type_width}}{name_col:<{name_width}}create {flag}".rstrip())
    lines.append("")
    if capture.outputs:
        lines.append("Outputs:")
        width = max(len(k) for k in capture.outputs) + 2
        for key, value in capture.outputs.items():
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            lines.append(f"    {key + ':':<{width}}{shown}")
        lines.append("")
    total = sum(1 for r in capture.registrations)
    protected = sum(1 for r in capture.registrations if r.protect)
    custom = sum(1 for r in capture.registrations if r.custom)
    components = total - custom - sum(1 for r in capture.registrations if r.type == STACK_TYPE)
    lines.append("Resources:")
    lines.append(f"    + {total} to create ({custom} cloud resources, {components} components, {protected} protected)")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml (bootstrap: infra/bootstrap/Pulumi.bootstrap.yaml)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)

    if args.stack == BOOTSTRAP_STACK:
        # The bootstrap project's one stack (infra/bootstrap/Pulumi.bootstrap.yaml).
        from tools.mock_bootstrap import run_bootstrap_stack

        capture = run_bootstrap_stack(args.stack, root=args.root)
    else:
        capture = run_stack(args.stack, root=args.root)
    if capture.error is not None:
        if isinstance(capture.error, ConfigError):
            # One line per problem (a bad stack file reports every problem at once).
            for problem in capture.error.problems:
                print(f"error: {problem}", file=sys.stderr)
            return 2
        print(f"error: the program failed: {type(capture.error).__name__}: {capture.error}", file=sys.stderr)
        return 1
    out = render_json(capture) if args.format == "json" else render_text(capture)
    sys.stdout.write(out)
    # The cost estimate's warnings (over the stack's budget, unpriced types): docs/cost.md.
    from tools.cost.cli import preview_warnings

    for warning in preview_warnings(args.stack, args.root, capture.as_document()):
        print(f"warning: cost ({args.stack}): {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
