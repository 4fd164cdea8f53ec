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

The spec fixes the order: metadata and thumbnails precede the G-code blocks,
so reading stops at the first GCode block and never decompresses G-code
(PrusaSlicer compresses it with heatshrink). Metadata blocks are deflated or
stored; a metadata block in heatshrink is skipped with a warning (no fact
invented from it).

Why not ``pybgcode``: Prusa publishes no wheel of its binding on PyPI; the
one wheel there is a personal fork (``pybgcode-jneilliii``) under
AGPL-3.0-or-later, and all this needs is the block framing plus zlib.
"""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from .errors import ExtractionError
from .gcode_facts import GcodeFacts

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


def read_metadata_blocks(path: Path) -> dict[str, dict[str, str]]:
    """The key/value pairs of each metadata block of a ``.bgcode`` file.

    Returns:
        ``{"FileMetadata": {"Producer": "PrusaSlicer 2.9.1", ...},
        "PrinterMetadata": {...}, "PrintMetadata": {...},
        "SlicerMetadata": {...}}`` - blocks absent from the file are absent.

    Raises:
        ExtractionError: wrong magic, unsupported version, unknown block type
            or compression, truncated block, CRC mismatch, undecodable
            deflate data, or no GCode block after the metadata.
    """
    size = path.stat().st_size
    blocks: dict[str, dict[str, str]] = {}
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
        offset = 10
        while True:
            if offset >= size:
                raise ExtractionError(
                    f"{path.name!r} ends at byte {offset} before any GCode block: truncated binary G-code"
                )
            block_type, compression, uncompressed, stored, head_len = _block_header(fh, path.name, offset)
            if block_type == GCODE:
                break
            params_len = 6 if block_type == THUMBNAIL else 2
            data_end = offset + head_len + params_len + stored
            if data_end + checksum_size > size:
                raise ExtractionError(
                    f"{path.name!r}: {BLOCK_NAMES[block_type]} block at byte {offset} declares "
                    f"{stored} data bytes but the file ends at byte {size}: truncated"
                )
            if block_type == THUMBNAIL:
                fh.seek(data_end + checksum_size)
            else:
                blocks[BLOCK_NAMES[block_type]] = _metadata_block(
                    fh, path.name, offset, block_type, compression, uncompressed, stored,
                    head_len, params_len, checksum_size,
                )
            offset = data_end + checksum_size
    return blocks


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
    data = raw[head_len + params_len :]
    if compression == COMPRESSION_DEFLATE:
        try:
            data = zlib.decompress(data, bufsize=max(uncompressed, 1))
        except zlib.error as exc:
            raise ExtractionError(f"{name!r}: {block_name} block at byte {offset}: bad deflate data ({exc})") from exc
    elif compression != COMPRESSION_NONE:
        log.warning("%s: %s block at byte %d is heatshrink-compressed; skipped", name, block_name, offset)
        return {}
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
    blocks = read_metadata_blocks(path)
    facts = GcodeFacts()
    for block_type in _FACT_ORDER:
        for key, value in blocks.get(BLOCK_NAMES[block_type], {}).items():
            facts.feed_key_value(key, value)
    out: dict = {"format": "bgcode"}
    out.update(facts.result(whole_file_seen=False))
    return out
