"""``python -m tools.cost``: the monthly estimate of a stack (``make cost STACK=dev|prod [FORMAT=json]``).

Usage::

    python -m tools.cost --stack prod [--format text|json] [--preview-json FILE] [--root DIR]

Without ``--preview-json`` it evaluates the offline preview itself
(tools/preview.py's mock run). Exit status: 0 with an estimate (warnings, such as
an estimate over the stack's budget or an unpriced resource type, go to stderr
and into the JSON ``warnings``), 2 on a configuration error (stack file, usage
file, price table or Helm values: one line naming the file and the key), 1 on
any other error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from infra.releases import ReleaseValuesError
from infra.settings import ConfigError, load_stack_settings
from tools.cost import render_text
from tools.cost.estimate import Estimate, EstimateError, estimate
from tools.cost.prices import load_prices
from tools.cost.usage import load_usage


def preview_document(stack: str, root: Optional[Path]) -> dict[str, Any]:
    """The stack's offline preview document (tools/preview.py's JSON), evaluated in this process.

    Raises:
        ConfigError: the stack config is invalid.
        RuntimeError: the program failed.
    """
    from tools.mock_runtime import run_stack

    capture = run_stack(stack, root=root)
    if capture.error is not None:
        if isinstance(capture.error, ConfigError):
            raise capture.error
        raise RuntimeError(f"the program failed: {type(capture.error).__name__}: {capture.error}")
    return capture.as_document()


def estimate_stack(stack: str, root: Optional[Path] = None, document: Optional[dict[str, Any]] = None) -> Estimate:
    """Load everything a stack's estimate needs (validated) and compute it.

    Raises:
        ConfigError: stack file, usage file or price table invalid.
        EstimateError, KeyError: see :func:`tools.cost.estimate.estimate`.
    """
    settings = load_stack_settings(stack, root)
    usage = load_usage(stack, root)
    prices = load_prices(root)
    if document is None:
        document = preview_document(stack, root)
    return estimate(document, settings, usage, prices, root)


def preview_warnings(stack: str, root: Optional[Path], document: dict[str, Any]) -> list[str]:
    """The estimate's warnings for the offline preview (over budget, unpriced types, stale prices).

    Never raises: when the estimate cannot be made, the one warning says why (the
    preview itself stays valid).
    """
    try:
        return estimate_stack(stack, root, document).warnings
    except (ValueError, KeyError, OSError) as exc:  # ConfigError, EstimateError, ReleaseValuesError, ...
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return [f"no cost estimate: {message}"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: Pulumi.<stack>.yaml, environments/<stack>/")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--preview-json", type=Path, help="use this preview document instead of evaluating one")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.preview_json.read_text()) if args.preview_json else None
        result = estimate_stack(args.stack, args.root, document)
    except (ConfigError, ReleaseValuesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (EstimateError, KeyError, RuntimeError, OSError, json.JSONDecodeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: cost: {message}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: cost ({args.stack}): {warning}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_document(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
