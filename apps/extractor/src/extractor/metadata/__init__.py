"""Metadata extraction for print files: G-code, binary G-code, STL, 3MF.

Public API (the extractor worker and the ``extract-metadata`` CLI use it)::

    from extractor.metadata import extract_metadata, ExtractionError
    metadata = extract_metadata(path, filename)

The returned dict has the fields of ``schema.Metadata``; docs/metadata.md
describes each field's semantics per format.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

from pipeline_core.formats import FileFormat, UnsupportedFormat, detect_format, match_extension

from .errors import ExtractionError
from .schema import FIELDS

__all__ = ["ExtractionError", "extract_metadata"]

log = logging.getLogger(__name__)


def extract_metadata(path: Path, filename: str) -> dict:
    """Read the metadata a print file states about itself.

    Args:
        path: the file's content on local disk (any name).
        filename: the original upload name; its ending chooses the parser
            (``pipeline_core.formats.detect_format``: ``.gcode``/``.gco``/``.g``,
            ``.gcode.gz``, ``.bgcode``, ``.stl``, ``.3mf``, case-insensitive).

    Returns:
        A JSON-serialisable dict: ``format`` always, every other field of
        ``schema.Metadata`` only when the file states it (lengths in mm,
        times in s, masses in g, volumes in mm^3, areas in mm^2).

    Raises:
        ExtractionError: the content cannot be parsed as the format the name
            says (empty, truncated, not that format, no 3D model part,
            garbled XML, Git LFS pointer, unsupported ending, ...). Its
            ``reason`` says what and where. Unexpected parser failures are
            wrapped into it too: nothing else escapes for bad content.
        OSError: ``path`` itself cannot be read (missing file, permissions,
            I/O error): an environment fault, not a property of the content,
            so a worker may retry it. ``MemoryError`` likewise propagates.
    """
    try:
        fmt = detect_format(filename)
    except UnsupportedFormat as exc:
        raise ExtractionError(str(exc)) from exc
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"not a regular file: {path}")
    try:
        found = _dispatch(fmt, path, filename)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        if not isinstance(exc, gzip.BadGzipFile):
            raise  # the disk, not the content: the caller may retry
        raise ExtractionError(f"{filename!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - contract: wrap any parser failure
        log.warning("unexpected %s while parsing %r", type(exc).__name__, filename, exc_info=True)
        raise ExtractionError(
            f"cannot parse {filename!r} as {fmt.value}: {type(exc).__name__}: {exc}"
        ) from exc
    return {key: found[key] for key in FIELDS if key in found}


def _dispatch(fmt: FileFormat, path: Path, filename: str) -> dict:
    if fmt is FileFormat.GCODE:
        from .gcode import extract_gcode

        return extract_gcode(path, gzipped=match_extension(filename) == ".gcode.gz")
    if fmt is FileFormat.BGCODE:
        from .bgcode import extract_bgcode

        return extract_bgcode(path)
    if fmt is FileFormat.STL:
        from .stl import extract_stl

        return extract_stl(path)
    if fmt is FileFormat.THREEMF:
        from .threemf import extract_3mf

        return extract_3mf(path)
    raise ExtractionError(f"no parser for format {fmt.value!r}")  # pragma: no cover
