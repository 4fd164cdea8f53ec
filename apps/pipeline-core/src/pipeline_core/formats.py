"""The print-file formats the pipeline accepts: one place for the list.

files-api uses it to accept or reject uploads (415 for anything else); the
extractor uses it to choose a parser. Matching is on the file name's ending,
case-insensitive, longest ending first (so ``part.gcode.gz`` is gzip-compressed
G-code, not an unknown ``.gz``, and ``plate.gcode.3mf`` a 3MF plate file).

The name only proposes: ``sniff_format`` corrects it from the first bytes
(a ``GCDE`` file named ``.gcode`` is binary G-code, a gzip stream named
``.gcode`` is gzip-compressed G-code), so both services agree on what a file
is whatever its name says.
"""

from __future__ import annotations

from enum import Enum


class FileFormat(str, Enum):
    """A metadata ``format`` value, as the extractor reports it."""

    GCODE = "gcode"
    BGCODE = "bgcode"
    STL = "stl"
    THREEMF = "3mf"
    UFP = "ufp"


#: File-name ending -> (format, Content-Type stored with the object).
#: Content types: G-code has no registered media type, so ``text/x.gcode``
#: (RFC 6838 unregistered "x." tree); ``model/stl`` (IANA, 2018);
#: ``model/3mf`` (IANA, 2020; also for Bambu/Orca ``.gcode.3mf`` plate files,
#: which are 3MF packages); UFP is ``application/x-ufp`` (the type Cura's
#: UFPWriter plugin registers); binary G-code and gzip are opaque bytes.
EXTENSIONS: dict[str, tuple[FileFormat, str]] = {
    ".gcode.3mf": (FileFormat.THREEMF, "model/3mf"),
    ".gcode.gz": (FileFormat.GCODE, "application/gzip"),
    ".gcode": (FileFormat.GCODE, "text/x.gcode"),
    ".gco": (FileFormat.GCODE, "text/x.gcode"),
    ".g": (FileFormat.GCODE, "text/x.gcode"),
    ".bgcode": (FileFormat.BGCODE, "application/octet-stream"),
    ".stl": (FileFormat.STL, "model/stl"),
    ".3mf": (FileFormat.THREEMF, "model/3mf"),
    ".ufp": (FileFormat.UFP, "application/x-ufp"),
}
#: Magic numbers (first bytes) that override the name's format.
BGCODE_MAGIC = b"GCDE"
GZIP_MAGIC = b"\x1f\x8b"
#: How many leading bytes ``sniff_format`` needs.
SNIFF_BYTES = 4


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


def sniff_format(filename: str, head: bytes) -> tuple[FileFormat, bool]:
    """The format of a file from its name *and* its first bytes.

    Args:
        filename: the upload name (its ending proposes the format).
        head: at least the first ``SNIFF_BYTES`` bytes of the content.

    Returns:
        ``(format, gzipped)``: a G-code name (``.gcode``/``.gco``/``.g``/
        ``.gcode.gz``) whose content starts with the ``GCDE`` magic is
        ``BGCODE`` (libbgcode specification: the file header starts with it);
        a G-code name whose content starts with the gzip magic ``1f 8b``
        (RFC 1952) is gzip-compressed G-code (``gzipped`` True). Every other
        case is the name's format (``gzipped`` for ``.gcode.gz``).

    Raises:
        UnsupportedFormat: the name has none of the accepted endings.
    """
    ending = match_extension(filename)
    fmt = EXTENSIONS[ending][0]
    if fmt is FileFormat.GCODE:
        if head.startswith(BGCODE_MAGIC):
            return FileFormat.BGCODE, False
        if head.startswith(GZIP_MAGIC):
            return FileFormat.GCODE, True
        return FileFormat.GCODE, ending == ".gcode.gz"
    return fmt, False


def content_type_for_content(filename: str, head: bytes) -> str:
    """The Content-Type to store for ``filename`` whose content starts with ``head``.

    Like ``content_type_for`` but corrected by ``sniff_format``: binary
    G-code under a ``.gcode`` name is stored as ``application/octet-stream``,
    gzip under ``.gcode`` as ``application/gzip``. Raises ``UnsupportedFormat``.
    """
    fmt, gzipped = sniff_format(filename, head)
    if fmt is FileFormat.BGCODE:
        return EXTENSIONS[".bgcode"][1]
    if fmt is FileFormat.GCODE and gzipped:
        return EXTENSIONS[".gcode.gz"][1]
    return content_type_for(filename)
