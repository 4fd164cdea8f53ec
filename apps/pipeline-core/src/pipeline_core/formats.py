"""The print-file formats the pipeline accepts: one place for the list.

files-api uses it to accept or reject uploads (415 for anything else); the
extractor uses it to choose a parser. Matching is on the file name's ending,
case-insensitive, longest ending first (so ``part.gcode.gz`` is gzip-compressed
G-code, not an unknown ``.gz``).
"""

from __future__ import annotations

from enum import Enum


class FileFormat(str, Enum):
    """A metadata ``format`` value, as the extractor reports it."""

    GCODE = "gcode"
    BGCODE = "bgcode"
    STL = "stl"
    THREEMF = "3mf"


#: File-name ending -> (format, Content-Type stored with the object).
#: Content types: G-code has no registered media type, so ``text/x.gcode``
#: (RFC 6838 unregistered "x." tree); ``model/stl`` (IANA, 2018);
#: ``model/3mf`` (IANA, 2020); binary G-code and gzip are opaque bytes.
EXTENSIONS: dict[str, tuple[FileFormat, str]] = {
    ".gcode.gz": (FileFormat.GCODE, "application/gzip"),
    ".gcode": (FileFormat.GCODE, "text/x.gcode"),
    ".gco": (FileFormat.GCODE, "text/x.gcode"),
    ".g": (FileFormat.GCODE, "text/x.gcode"),
    ".bgcode": (FileFormat.BGCODE, "application/octet-stream"),
    ".stl": (FileFormat.STL, "model/stl"),
    ".3mf": (FileFormat.THREEMF, "model/3mf"),
}


class UnsupportedFormat(ValueError):
    """The file name has none of the accepted endings (see ``EXTENSIONS``)."""


def match_extension(filename: str) -> str:
    """Return the accepted ending of ``filename`` (lower-case, with the dot).

    Raises:
        UnsupportedFormat: the name ends in none of ``EXTENSIONS``; the message
            names the file and lists what is accepted.
    """
    lower = filename.lower()
    for ending in sorted(EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ending) and len(lower) > len(ending):
            return ending
    accepted = ", ".join(sorted(EXTENSIONS))
    raise UnsupportedFormat(f"{filename!r} is not a supported print file; accepted endings: {accepted}")


def detect_format(filename: str) -> FileFormat:
    """The format implied by ``filename``'s ending. Raises ``UnsupportedFormat``."""
    return EXTENSIONS[match_extension(filename)][0]


def content_type_for(filename: str) -> str:
    """The Content-Type to store with ``filename``. Raises ``UnsupportedFormat``."""
    return EXTENSIONS[match_extension(filename)][1]
