"""``extract-metadata PATH...``: the metadata library on local files, as JSON lines.

For each path, in order, one line on stdout::

    {"path": "...", "status": "processed", "metadata": {...}, "error": null}
    {"path": "...", "status": "failed", "metadata": null, "error": "<reason>"}

``status``/``metadata``/``error`` mean what they mean in the
``extraction_results`` table (docs/seams.md). ``--thumbnails DIR`` also writes
each file's stored thumbnail (the bounded PNG the worker would store) to
``DIR/<file name>.png``. The format is chosen by the
path's file name, as the worker chooses it by the upload's name; ``--name``
overrides it for a single path (a downloaded object stored under another name).

Exit status: 0 when every file was processed, 1 when any failed, 2 on usage
errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .metadata import ExtractionError, extract


def extract_one(path: Path, filename: str | None = None, thumbnails: Path | None = None) -> dict:
    """The result line for one path: ``{"path", "status", "metadata", "error"}``.

    A file that cannot be read at all (missing, a directory, no permission)
    is ``failed`` with the OS error as its reason, like unparsable content.
    With ``thumbnails``, the file's thumbnail (if any) is written there as
    ``<file name>.png``.
    """
    try:
        extraction = extract(path, filename or path.name)
        metadata = extraction.metadata
        if thumbnails is not None and extraction.thumbnail is not None:
            (thumbnails / f"{path.name}.png").write_bytes(extraction.thumbnail.png)
    except ExtractionError as exc:
        return {"path": str(path), "status": "failed", "metadata": None, "error": exc.reason}
    except OSError as exc:
        reason = f"cannot read {str(path)!r}: {exc.strerror or exc}"
        return {"path": str(path), "status": "failed", "metadata": None, "error": reason}
    return {"path": str(path), "status": "processed", "metadata": metadata, "error": None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extract-metadata",
        description="Print one JSON line of metadata per print file (G-code, .gcode.gz, .bgcode, STL, 3MF, UFP).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument(
        "--thumbnails", type=Path, metavar="DIR",
        help="write each file's thumbnail (PNG, as the worker stores it) to DIR/<file name>.png",
    )
    parser.add_argument(
        "--name",
        help="file name whose ending chooses the format (only with a single PATH; default: PATH's own name)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.name and len(args.paths) != 1:
        parser.error("--name applies to a single PATH")
    if args.thumbnails is not None and not args.thumbnails.is_dir():
        parser.error(f"--thumbnails {args.thumbnails}: not a directory")
    failed = False
    for path in args.paths:
        line = extract_one(path, args.name, args.thumbnails)
        try:
            text = json.dumps(line, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:  # NaN/infinity in metadata: a parser bug, reported per file
            line = {"path": str(path), "status": "failed", "metadata": None, "error": f"internal error: {exc}"}
            text = json.dumps(line, ensure_ascii=False)
        failed |= line["status"] == "failed"
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
