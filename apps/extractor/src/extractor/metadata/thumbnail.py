"""Embedded preview images: found in the file, stored as one bounded PNG.

Where slicers put them (each parser collects ``Candidate`` s):

* text G-code: ``; thumbnail begin WxH LEN`` .. ``; thumbnail end`` blocks of
  base64 lines (PrusaSlicer, SuperSlicer, Orca, Bambu - inside
  ``; THUMBNAIL_BLOCK_START``; Cura writes ``;thumbnail begin``), with
  ``thumbnail_JPG`` / ``thumbnail_QOI`` variants (PrusaSlicer
  ``thumbnails_format``);
* binary G-code: Thumbnail blocks (libbgcode specification: parameters
  format ``u16`` 0 PNG, 1 JPG, 2 QOI, width ``u16``, height ``u16``);
* 3MF: the OPC package thumbnail relationship and Bambu/Orca
  ``Metadata/plate_N.png``, Cura ``Metadata/thumbnail.png``;
* UFP: ``/Metadata/thumbnail.png``.

The stored thumbnail (``make_thumbnail``) is always a PNG, whatever the
source encoding (PNG, JPEG, QOI, WebP: decoded by Pillow), at most
``MAX_SIDE_PX`` on its longest side and at most ``MAX_PNG_BYTES`` bytes:
the largest candidate is scaled down (aspect kept) until both hold. A
candidate Pillow cannot decode is skipped (logged), never fatal: a broken
preview does not make a print file bad.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from pipeline_core.models import THUMBNAIL_MAX_BYTES, THUMBNAIL_MAX_SIDE_PX

log = logging.getLogger(__name__)

#: Longest side of the stored PNG, in pixels (the ``file_thumbnails`` table's bound).
MAX_SIDE_PX = THUMBNAIL_MAX_SIDE_PX
#: Largest stored PNG, in bytes (256 KiB; the table's bound).
MAX_PNG_BYTES = THUMBNAIL_MAX_BYTES
#: Embedded images larger than this (encoded) are not decoded (memory guard).
MAX_SOURCE_BYTES = 16 * 1024 * 1024
#: Embedded images with more pixels than this are not decoded (decompression-bomb guard).
MAX_SOURCE_PIXELS = 32 * 1024 * 1024
_FORMATS = ("PNG", "JPEG", "QOI", "WEBP", "GIF", "BMP")


@dataclass(frozen=True)
class Candidate:
    """An embedded image as found: ``data`` encoded bytes, ``fmt`` as the file
    names it (``png``/``jpg``/``qoi``/``webp``), ``source`` where it was (part
    name, block offset, line), ``width``/``height`` as stated (0 when not)."""

    data: bytes
    fmt: str
    source: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Thumbnail:
    """The stored preview: ``png`` bytes, its pixel size, and what it came from."""

    png: bytes
    width: int
    height: int
    source: str
    source_format: str
    source_width: int
    source_height: int

    def describe(self) -> dict:
        """The ``thumbnail`` metadata member (see docs/metadata.md)."""
        return {
            "source": self.source,
            "source_format": self.source_format,
            "source_width": self.source_width,
            "source_height": self.source_height,
            "width": self.width,
            "height": self.height,
        }


_BEGIN = re.compile(r"^;\s*thumbnail(?:_(?P<fmt>PNG|JPG|QOI))?\s+begin\s+(?P<w>\d+)\s*x\s*(?P<h>\d+)(?:\s+\d+)?\s*$")
_END = re.compile(r"^;\s*thumbnail(?:_(?:PNG|JPG|QOI))?\s+end\s*$")


def gcode_thumbnails(text: str, where: str = "G-code") -> list[Candidate]:
    """The ``; thumbnail begin WxH LEN`` blocks of G-code comment text."""
    found: list[Candidate] = []
    current: list[str] | None = None
    fmt = "png"
    width = height = 0
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if current is None:
            match = _BEGIN.match(line)
            if match:
                current, start = [], number
                fmt = (match.group("fmt") or "PNG").lower()
                width, height = int(match.group("w")), int(match.group("h"))
            continue
        if _END.match(line):
            try:
                data = base64.b64decode("".join(current), validate=False)
            except (binascii.Error, ValueError):
                log.warning("thumbnail at line %d of %s is not base64; skipped", start, where)
            else:
                found.append(Candidate(data, fmt, f"{where} line {start}", width, height))
            current = None
            continue
        if not line.startswith(";"):
            current = None  # a block cut by G-code: not a thumbnail
            continue
        current.append(line.lstrip(";").strip())
    return found


def make_thumbnail(candidates: list[Candidate]) -> Thumbnail | None:
    """The bounded PNG of the largest decodable candidate (by stated size; else
    the first in the caller's order of preference), or None when none decodes."""
    # largest stated size first; candidates without a stated size keep the
    # parser's order of preference (sorted() is stable)
    ordered = sorted(candidates, key=lambda c: c.width * c.height, reverse=True)
    for candidate in ordered:
        try:
            return _convert(candidate)
        except Exception as exc:  # noqa: BLE001 - any decoder failure: try the next candidate
            log.warning("embedded %s image (%s) cannot be decoded: %s", candidate.fmt, candidate.source, exc)
    return None


def _convert(candidate: Candidate) -> Thumbnail:
    if len(candidate.data) > MAX_SOURCE_BYTES:
        raise ValueError(f"{len(candidate.data)} bytes, above {MAX_SOURCE_BYTES}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(candidate.data), formats=_FORMATS)
        source_w, source_h = image.size
        if source_w * source_h > MAX_SOURCE_PIXELS:
            raise ValueError(f"{source_w}x{source_h} pixels, above {MAX_SOURCE_PIXELS}")
        image.load()
    mode = "RGBA" if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info else "RGB"
    image = image.convert(mode)
    side = MAX_SIDE_PX
    while True:
        scaled = image.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.save(buffer, format="PNG", optimize=True)
        png = buffer.getvalue()
        if len(png) <= MAX_PNG_BYTES or side <= 16:
            break
        side = int(side * 0.75)
    if len(png) > MAX_PNG_BYTES:
        raise ValueError(f"no PNG of it fits {MAX_PNG_BYTES} bytes")
    return Thumbnail(
        png=png, width=scaled.width, height=scaled.height, source=candidate.source,
        source_format=candidate.fmt, source_width=source_w, source_height=source_h,
    )
