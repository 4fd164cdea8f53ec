"""OPC packages (ECMA-376 Part 2): the ZIP container of 3MF and UFP, read tolerantly.

Python's ``zipfile`` reads the archive. What real writers do that a strict
reader trips on, and how it is handled here:

* bytes before the ZIP data (some Bambu/Orca plate files carry slicer log
  text first): ``zipfile`` finds the end-of-central-directory record and
  corrects every offset by the prefix length;
* member names with a leading slash (Cura's UFP writes ``/3D/model.gcode``):
  parts are looked up by their OPC part name, case-insensitively (OPC part
  names are ASCII case-insensitive, ECMA-376-2 9.1.1.1), with or without the
  leading slash, percent-encoding undone;
* a UTF-8 byte order mark before an XML declaration (lib3mf's own test
  files): stripped before parsing.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO
from urllib.parse import unquote
from xml.etree import ElementTree

from .errors import ExtractionError

RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
#: OPC package thumbnail relationship (ECMA-376-2 Annex, 3MF Core spec 2.1).
THUMBNAIL_RELATIONSHIP = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
UTF8_BOM = b"\xef\xbb\xbf"
#: XML parts read whole (relationships, configs) larger than this are refused (memory guard).
MAX_SMALL_PART_BYTES = 32 * 1024 * 1024


def normalise(part: str) -> str:
    """A part name as a lookup key: no leading ``/``, percent-decoded, lower-case."""
    return unquote(part.replace("\\", "/")).lstrip("/").lower()


class Package:
    """An open OPC package. Use as a context manager.

    Raises (from the constructor):
        ExtractionError: empty file, not a ZIP archive, unreadable central directory.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.name = path.name
        self.kind = kind
        if path.stat().st_size == 0:
            raise ExtractionError(f"{path.name!r} is empty (0 bytes): no {kind} package")
        if not zipfile.is_zipfile(path):
            raise ExtractionError(f"{path.name!r} is not a {kind} package: not a ZIP archive")
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ExtractionError(f"{path.name!r}: the ZIP archive cannot be read: {exc}") from exc
        self._parts = {}
        for info in self.zip.infolist():
            if not info.is_dir():
                self._parts.setdefault(normalise(info.filename), info)
        #: bytes before the ZIP data (slicer log text, a stub): said in the metadata
        self.leading_bytes = _prefix_length(self.zip)

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.zip.close()

    def has(self, part: str) -> bool:
        return normalise(part) in self._parts

    def info(self, part: str) -> zipfile.ZipInfo | None:
        return self._parts.get(normalise(part))

    def names(self) -> list[str]:
        """Every part name, as stored."""
        return [info.filename for info in self._parts.values()]

    def open(self, part: str) -> IO[bytes]:
        """A forward-only stream of the part's content. Raises ``KeyError`` if absent."""
        info = self._parts[normalise(part)]
        return self.zip.open(info)

    def read(self, part: str, limit: int = MAX_SMALL_PART_BYTES) -> bytes:
        """The whole part (at most ``limit`` bytes). Raises ``KeyError``/``ExtractionError``."""
        info = self._parts[normalise(part)]
        if info.file_size > limit:
            raise ExtractionError(f"{self.name!r}: part {info.filename} is {info.file_size} bytes, above {limit}")
        try:
            return self.zip.read(info)
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise ExtractionError(f"{self.name!r}: part {info.filename} cannot be read: {exc}") from exc

    def relationships(self, source: str = "") -> list[tuple[str, str]]:
        """``(type, target part name)`` of the relationships part of ``source``
        (``""``: the package's ``_rels/.rels``); targets resolved to absolute
        part names. Missing part -> ``[]``.

        Raises:
            ExtractionError: the relationships part is not well-formed XML.
        """
        folder, _, base = normalise(source).rpartition("/")
        rels = f"{folder}/_rels/{base}.rels" if source else "_rels/.rels"
        if not self.has(rels):
            return []
        data = self.read(rels).removeprefix(UTF8_BOM).lstrip()
        try:
            root = ElementTree.fromstring(data)
        except ElementTree.ParseError as exc:
            raise ExtractionError(f"{self.name!r}: {rels} is not well-formed XML ({exc})") from exc
        found = []
        for rel in root.iter(f"{RELS_NS}Relationship"):
            target = rel.get("Target") or ""
            if not target.startswith("/"):
                target = f"/{folder}/{target}" if folder else f"/{target}"
            found.append((rel.get("Type") or "", target))
        return found


def _prefix_length(archive: zipfile.ZipFile) -> int:
    """Bytes before the ZIP data. ``zipfile`` adds the prefix length to every
    member's ``header_offset``; the first local header of an archive written
    in one go is at 0, so the smallest corrected offset is the prefix."""
    offsets = [info.header_offset for info in archive.infolist()]
    return min(offsets) if offsets else 0
