"""Metadata extraction for print files: G-code, binary G-code, STL, 3MF, UFP.

Public API (the extractor worker and the ``extract-metadata`` CLI use it)::

    from extractor.metadata import extract, extract_metadata, ExtractionError
    extraction = extract(path, filename)      # .metadata dict, .thumbnail (PNG) or None
    metadata = extract_metadata(path, filename)

The returned dict has the fields of ``schema.Metadata``; docs/metadata.md
describes each field's semantics per format.
"""

from __future__ import annotations

import gzip
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline_core.formats import SNIFF_BYTES, FileFormat, UnsupportedFormat, sniff_format

from .errors import ExtractionError
from .schema import FIELDS
from .thumbnail import Thumbnail, make_thumbnail

__all__ = ["Extraction", "ExtractionError", "Thumbnail", "extract", "extract_metadata"]


@dataclass(frozen=True)
class Extraction:
    """What one file yields: its ``metadata`` (``schema.Metadata``) and its
    embedded preview as a bounded PNG (``thumbnail.Thumbnail``), or None."""

    metadata: dict
    thumbnail: Thumbnail | None

log = logging.getLogger(__name__)


def extract_metadata(path: Path, filename: str) -> dict:
    """The metadata of ``extract(path, filename)`` (same arguments and errors)."""
    return extract(path, filename).metadata


def extract(path: Path, filename: str) -> Extraction:
    """Read the metadata a print file states about itself, and its preview image.

    Args:
        path: the file's content on local disk (any name).
        filename: the original upload name; its ending proposes the parser,
            the first bytes confirm or correct it
            (``pipeline_core.formats.sniff_format``: ``.gcode``/``.gco``/``.g``,
            ``.gcode.gz``, ``.bgcode``, ``.stl``, ``.3mf``, ``.gcode.3mf``,
            ``.ufp``, case-insensitive; a ``GCDE`` file named ``.gcode`` is
            read as binary G-code).

    Returns:
        ``Extraction``: ``metadata`` a JSON-serialisable dict - ``format``
        always, every other field of ``schema.Metadata`` only when the file
        states it (lengths in mm, times in s, masses in g, volumes in mm^3,
        areas in mm^2); ``thumbnail`` the largest embedded preview as a PNG
        (``thumbnail.MAX_SIDE_PX``, ``thumbnail.MAX_PNG_BYTES``) or None.

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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"not a regular file: {path}")
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    try:
        fmt, gzipped = sniff_format(filename, head)
    except UnsupportedFormat as exc:
        raise ExtractionError(str(exc)) from exc
    try:
        found = _dispatch(fmt, gzipped, path)
    except ExtractionError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        if not isinstance(exc, (gzip.BadGzipFile, zipfile.BadZipFile)):
            raise  # the disk, not the content: the caller may retry
        raise ExtractionError(f"{filename!r}: {exc}") from exc
    except zipfile.BadZipFile as exc:
        raise ExtractionError(f"{filename!r}: the ZIP archive is corrupt: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - contract: wrap any parser failure
        log.warning("unexpected %s while parsing %r", type(exc).__name__, filename, exc_info=True)
        raise ExtractionError(
            f"cannot parse {filename!r} as {fmt.value}: {type(exc).__name__}: {exc}"
        ) from exc
    candidates = found.pop("_thumbnails", [])
    thumbnail = make_thumbnail(candidates) if candidates else None
    metadata = {key: found[key] for key in FIELDS if key in found}
    if thumbnail is not None:
        metadata["thumbnail"] = thumbnail.describe()
    return Extraction(metadata=metadata, thumbnail=thumbnail)


def _dispatch(fmt: FileFormat, gzipped: bool, path: Path) -> dict:
    if fmt is FileFormat.GCODE:
        from .gcode import extract_gcode

        return extract_gcode(path, gzipped=gzipped)
    if fmt is FileFormat.BGCODE:
        from .bgcode import extract_bgcode

        return extract_bgcode(path)
    if fmt is FileFormat.STL:
        from .stl import extract_stl

        return extract_stl(path)
    if fmt is FileFormat.THREEMF:
        from .threemf import extract_3mf

        return extract_3mf(path)
    if fmt is FileFormat.UFP:
        from .ufp import extract_ufp

        return extract_ufp(path)
    raise ExtractionError(f"no parser for format {fmt.value!r}")  # pragma: no cover
