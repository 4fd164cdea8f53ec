"""Prusa binary G-code (``.bgcode``): the metadata blocks, nothing else.

A small reader following the libbgcode specification
(https://github.com/prusa3d/libbgcode/blob/main/doc/specifications.md):

* file header, 10 bytes: magic ``GCDE``, version ``u32`` (1), checksum type
  ``u16`` (0 none, 1 CRC32);
* then blocks, each: header ``{type u16, compression u16,
  uncompressed_size u32, [compressed_size u32 when compression != 0]}``,
  parameters (``u16`` encoding for metadata and G-code blocks; ``u16`` format,
  ``u16`` width, ``u16`` height for thumbnails), the data (``compressed_size``
  or ``uncompressed_size`` bytes), and a CRC32 of header+parameters+data when
  the checksum type is 1;
* block types: FileMetadata=0, GCode=1, SlicerMetadata=2, PrinterMetadata=3,
  PrintMetadata=4, Thumbnail=5; compression: 0 none, 1 deflate (zlib),
  2 heatshrink 11/4, 3 heatshrink 12/4; metadata encoding 0 = INI
  (``key=value`` lines).

The spec fixes the order: metadata and thumbnails precede the G-code blocks.
Metadata and thumbnail blocks are stored, deflated or heatshrink-compressed
(decoded with the ``heatshrink2`` package, window 11 or 12, lookahead 4).
Thumbnail blocks (PNG, JPG, QOI) become the file's thumbnail (``thumbnail``).

The G-code blocks are read only to count layers, which binary metadata never
states: when the file is at most ``gcode.LAYER_SCAN_MAX_BYTES`` and the
producer's layer-change marker is known, every GCode block is decompressed
(heatshrink), decoded (MeatPack, ``meatpack.unpack``) one block at a time and
its marker lines counted. MeatPack *without* comments (encoding 1) drops the
markers, so the count is then absent; so it is when a GCode block is
corrupt (CRC, undecodable data): logged, the metadata blocks still count. Larger files are not scanned (time),
like text G-code.

Why not ``pybgcode``: Prusa publishes no wheel of its binding on PyPI; the
one wheel there is a personal fork (``pybgcode-jneilliii``) under
AGPL-3.0-or-later, and all this needs is the block framing, zlib,
heatshrink2 and the small MeatPack decoder.
"""

from __future__ import annotations

import logging
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import heatshrink2

from .errors import ExtractionError
from .gcode import LAYER_SCAN_MAX_BYTES
from .gcode_facts import GcodeFacts
from .meatpack import MEATPACK, MEATPACK_COMMENTS, unpack
from .thumbnail import Candidate


log = logging.getLogger(__name__)

MAGIC = b"GCDE"
SUPPORTED_VERSIONS = frozenset({1})

FILE_METADATA, GCODE, SLICER_METADATA, PRINTER_METADATA, PRINT_METADATA, THUMBNAIL = range(6)
BLOCK_NAMES = {
    FILE_METADATA: "FileMetadata",
    GCODE: "GCode",
    SLICER_METADATA: "SlicerMetadata",
    PRINTER_METADATA: "PrinterMetadata",
    PRINT_METADATA: "PrintMetadata",
    THUMBNAIL: "Thumbnail",
}
#: Metadata blocks in the order their facts are preferred (first statement wins).
_FACT_ORDER = (FILE_METADATA, PRINT_METADATA, PRINTER_METADATA, SLICER_METADATA)
COMPRESSION_NONE, COMPRESSION_DEFLATE, COMPRESSION_HEATSHRINK_11_4, COMPRESSION_HEATSHRINK_12_4 = range(4)
_CHECKSUM_NONE, _CHECKSUM_CRC32 = 0, 1
#: A metadata block larger than this is not metadata (guards memory).
MAX_METADATA_BLOCK_BYTES = 16 * 1024 * 1024
#: Thumbnail block ``format`` parameter -> name (libbgcode ``EThumbnailFormat``).
THUMBNAIL_FORMATS = {0: "png", 1: "jpg", 2: "qoi"}
#: GCode block encodings (libbgcode ``EGCodeEncodingType``): 0 none, 1 MeatPack, 2 MeatPack with comments.
GCODE_ENCODINGS = (0, MEATPACK, MEATPACK_COMMENTS)
#: A GCode block larger than this is not one PrusaSlicer writes (64 KiB blocks): memory guard.
MAX_GCODE_BLOCK_BYTES = 64 * 1024 * 1024


def read_metadata_blocks(path: Path) -> dict[str, dict[str, str]]:
    """The key/value pairs of each metadata block of a ``.bgcode`` file.

    Returns:
        ``{"FileMetadata": {"Producer": "PrusaSlicer 2.9.1", ...},
        "PrinterMetadata": {...}, "PrintMetadata": {...},
        "SlicerMetadata": {...}}`` - blocks absent from the file are absent.

    Raises:
        ExtractionError: see ``read_blocks``.
    """
    return read_blocks(path).metadata


class Blocks:
    """What ``read_blocks`` found: ``metadata`` by block name, ``thumbnails``,
    and ``gcode`` - ``(offset, compression, uncompressed, stored, head_len)`` per GCode block."""

    def __init__(self) -> None:
        self.metadata: dict[str, dict[str, str]] = {}
        self.thumbnails: list[Candidate] = []
        self.gcode: list[tuple[int, int, int, int, int]] = []
        self.checksum_size = 0


def read_blocks(path: Path) -> Blocks:
    """Walk every block of a ``.bgcode`` file: metadata and thumbnails read,
    GCode blocks located (not read).

    Raises:
        ExtractionError: wrong magic, unsupported version, unknown block type
            or compression, truncated block, CRC mismatch in a metadata block,
            undecodable deflate/heatshrink data, or no GCode block.
    """
    size = path.stat().st_size
    found = Blocks()
    with path.open("rb") as fh:
        header = fh.read(10)
        if len(header) < 10 or header[:4] != MAGIC:
            if not header:
                raise ExtractionError(f"{path.name!r} is empty (0 bytes): no binary G-code")
            raise ExtractionError(
                f"{path.name!r} is not binary G-code: starts with {header[:4]!r}, expected magic b'GCDE'"
            )
        version, checksum_type = struct.unpack("<IH", header[4:10])
        if version not in SUPPORTED_VERSIONS:
            raise ExtractionError(f"{path.name!r}: binary G-code version {version} is not supported (only 1)")
        if checksum_type not in (_CHECKSUM_NONE, _CHECKSUM_CRC32):
            raise ExtractionError(f"{path.name!r}: unknown checksum type {checksum_type} in the file header")
        checksum_size = 4 if checksum_type == _CHECKSUM_CRC32 else 0
        found.checksum_size = checksum_size
        offset = 10
        while offset < size:
            try:
                block_type, compression, uncompressed, stored, head_len = _block_header(fh, path.name, offset)
            except ExtractionError as exc:
                if not found.gcode:
                    raise
                # after the metadata: only the optional layer count can suffer
                log.warning("%s; G-code blocks after it are not read", exc)
                break
            params_len = 6 if block_type == THUMBNAIL else 2
            data_end = offset + head_len + params_len + stored
            if data_end + checksum_size > size:
                if block_type == GCODE and found.gcode:
                    log.warning("%s: last GCode block at byte %d is cut off; ignored", path.name, offset)
                    break
                raise ExtractionError(
                    f"{path.name!r}: {BLOCK_NAMES[block_type]} block at byte {offset} declares "
                    f"{stored} data bytes but the file ends at byte {size}: truncated"
                )
            if block_type == GCODE:
                found.gcode.append((offset, compression, uncompressed, stored, head_len))
            elif block_type == THUMBNAIL:
                thumbnail = _thumbnail_block(
                    fh, path.name, offset, compression, uncompressed, stored, head_len, checksum_size
                )
                if thumbnail is not None:
                    found.thumbnails.append(thumbnail)
            elif not found.gcode:
                found.metadata[BLOCK_NAMES[block_type]] = _metadata_block(
                    fh, path.name, offset, block_type, compression, uncompressed, stored,
                    head_len, params_len, checksum_size,
                )
            offset = data_end + checksum_size
    if not found.gcode:
        raise ExtractionError(
            f"{path.name!r} ends at byte {size} before any GCode block: truncated binary G-code"
        )
    return found


def _decompress(data: bytes, compression: int, uncompressed: int, where: str) -> bytes:
    """``data`` decompressed per the block's compression id; raises ``ExtractionError``."""
    try:
        if compression == COMPRESSION_DEFLATE:
            return zlib.decompress(data, bufsize=max(uncompressed, 1))
        if compression in (COMPRESSION_HEATSHRINK_11_4, COMPRESSION_HEATSHRINK_12_4):
            window = 11 if compression == COMPRESSION_HEATSHRINK_11_4 else 12
            return heatshrink2.decompress(data, window_sz2=window, lookahead_sz2=4)
    except (zlib.error, ValueError, TypeError, RuntimeError) as exc:
        kind = "deflate" if compression == COMPRESSION_DEFLATE else "heatshrink"
        raise ExtractionError(f"{where}: bad {kind} data ({exc})") from exc
    return data


def _thumbnail_block(
    fh: BinaryIO, name: str, offset: int, compression: int, uncompressed: int, stored: int,
    head_len: int, checksum_size: int,
) -> Candidate | None:
    where = f"{name!r}: Thumbnail block at byte {offset}"
    if max(stored, uncompressed) > MAX_METADATA_BLOCK_BYTES:
        log.warning("%s declares %d bytes; skipped", where, max(stored, uncompressed))
        return None
    fh.seek(offset)
    raw = fh.read(head_len + 6 + stored)
    if checksum_size:
        (expected,) = struct.unpack("<I", fh.read(4))
        if zlib.crc32(raw) != expected:
            log.warning("%s: CRC32 mismatch; thumbnail skipped", where)
            return None
    fmt, width, height = struct.unpack("<HHH", raw[head_len : head_len + 6])
    try:
        data = _decompress(raw[head_len + 6 :], compression, uncompressed, where)
    except ExtractionError as exc:
        log.warning("%s; thumbnail skipped", exc)
        return None
    return Candidate(data, THUMBNAIL_FORMATS.get(fmt, f"format {fmt}"), f"Thumbnail block at byte {offset}", width, height)


def iter_gcode_text(path: Path, blocks: Blocks) -> Iterator[bytes]:
    """The text of each GCode block in order (decompressed and MeatPack-decoded).

    Raises:
        ExtractionError: CRC mismatch, undecodable data, unknown encoding.
    """
    with path.open("rb") as fh:
        for offset, compression, uncompressed, stored, head_len in blocks.gcode:
            where = f"{path.name!r}: GCode block at byte {offset}"
            if max(stored, uncompressed) > MAX_GCODE_BLOCK_BYTES:
                raise ExtractionError(f"{where} declares {max(stored, uncompressed)} bytes, above {MAX_GCODE_BLOCK_BYTES}")
            fh.seek(offset)
            raw = fh.read(head_len + 2 + stored)
            if blocks.checksum_size:
                (expected,) = struct.unpack("<I", fh.read(4))
                actual = zlib.crc32(raw)
                if actual != expected:
                    raise ExtractionError(
                        f"{where}: CRC32 mismatch (stored {expected:#010x}, computed {actual:#010x}): corrupt file"
                    )
            (encoding,) = struct.unpack("<H", raw[head_len : head_len + 2])
            if encoding not in GCODE_ENCODINGS:
                raise ExtractionError(f"{where} has unknown encoding {encoding}")
            data = _decompress(raw[head_len + 2 :], compression, uncompressed, where)
            if len(data) != uncompressed:
                raise ExtractionError(f"{where} holds {len(data)} bytes, header says {uncompressed}")
            yield unpack(data) if encoding else data


def _block_header(fh: BinaryIO, name: str, offset: int) -> tuple[int, int, int, int, int]:
    fh.seek(offset)
    raw = fh.read(8)
    if len(raw) < 8:
        raise ExtractionError(f"{name!r}: block header at byte {offset} is cut off: truncated")
    block_type, compression, uncompressed = struct.unpack("<HHI", raw)
    if block_type not in BLOCK_NAMES:
        raise ExtractionError(f"{name!r}: unknown block type {block_type} at byte {offset}")
    if compression > COMPRESSION_HEATSHRINK_12_4:
        raise ExtractionError(f"{name!r}: unknown compression {compression} in block at byte {offset}")
    if compression == COMPRESSION_NONE:
        return block_type, compression, uncompressed, uncompressed, 8
    raw = fh.read(4)
    if len(raw) < 4:
        raise ExtractionError(f"{name!r}: block header at byte {offset} is cut off: truncated")
    (stored,) = struct.unpack("<I", raw)
    return block_type, compression, uncompressed, stored, 12


def _metadata_block(
    fh: BinaryIO,
    name: str,
    offset: int,
    block_type: int,
    compression: int,
    uncompressed: int,
    stored: int,
    head_len: int,
    params_len: int,
    checksum_size: int,
) -> dict[str, str]:
    block_name = BLOCK_NAMES[block_type]
    if max(stored, uncompressed) > MAX_METADATA_BLOCK_BYTES:
        raise ExtractionError(
            f"{name!r}: {block_name} block at byte {offset} declares {max(stored, uncompressed)} bytes, "
            f"more than metadata can be ({MAX_METADATA_BLOCK_BYTES})"
        )
    fh.seek(offset)
    raw = fh.read(head_len + params_len + stored)
    if checksum_size:
        (expected,) = struct.unpack("<I", fh.read(4))
        actual = zlib.crc32(raw)
        if actual != expected:
            raise ExtractionError(
                f"{name!r}: CRC32 mismatch in {block_name} block at byte {offset} "
                f"(stored {expected:#010x}, computed {actual:#010x}): corrupt file"
            )
    (encoding,) = struct.unpack("<H", raw[head_len : head_len + 2])
    if encoding != 0:
        raise ExtractionError(f"{name!r}: {block_name} block at byte {offset} has unknown encoding {encoding}")
    data = _decompress(raw[head_len + params_len :], compression, uncompressed, f"{name!r}: {block_name} block at byte {offset}")
    if len(data) != uncompressed:
        raise ExtractionError(
            f"{name!r}: {block_name} block at byte {offset} holds {len(data)} bytes, header says {uncompressed}"
        )
    pairs: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            pairs.setdefault(key.strip(), value.strip())
    return pairs


def extract_bgcode(path: Path) -> dict:
    """Metadata of a binary G-code file (``{"format": "bgcode", ...}``).

    Facts come from the metadata blocks through the same key rules as text
    G-code (PrusaSlicer writes identical keys: ``estimated printing time
    (normal mode)``, ``filament used [mm]``, ``layer_height``,
    ``nozzle_diameter``, ``gcode_flavor``, ``max_layer_z``), ``Producer``
    from FileMetadata. PrusaSlicer states no layer count in binary metadata
    and the G-code blocks are not decompressed, so it is usually absent.

    Raises:
        ExtractionError: see ``read_metadata_blocks``.
    """
    blocks = read_blocks(path)
    facts = GcodeFacts()
    for block_type in _FACT_ORDER:
        for key, value in blocks.metadata.get(BLOCK_NAMES[block_type], {}).items():
            facts.feed_key_value(key, value)
    out: dict = {"format": "bgcode"}
    out.update(facts.result(whole_file_seen=False))
    marker = facts.layer_marker()
    if "layer_count" not in out and marker is not None and path.stat().st_size <= LAYER_SCAN_MAX_BYTES:
        try:
            count = _count_markers(iter_gcode_text(path, blocks), marker)
        except ExtractionError as exc:
            # the metadata is intact; only the optional count is lost
            log.warning("%s; layer count not counted", exc)
            count = 0
        if count:
            out["layer_count"] = count
    if blocks.thumbnails:
        out["_thumbnails"] = blocks.thumbnails
    return out


def _count_markers(texts: Iterator[bytes], marker: re.Pattern[bytes]) -> int:
    """Marker lines over consecutive block texts (a line may span two blocks)."""
    count = 0
    carry = b""
    for text in texts:
        data = carry + text
        cut = data.rfind(b"\n") + 1
        count += len(marker.findall(data, 0, cut))
        carry = data[cut:]
    if carry:
        count += len(marker.findall(carry))
    return count
