"""Binary G-code: block framing per the libbgcode spec, on synthetic files and the real sample."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from extractor.metadata import ExtractionError, extract_metadata
import heatshrink2
from extractor.metadata.bgcode import read_metadata_blocks
from extractor.metadata.meatpack import unpack
from manifest import SAMPLES

FILE_METADATA, GCODE, SLICER, PRINTER, PRINT, THUMBNAIL = range(6)


def block(kind: int, data: bytes, *, compression: int = 0, params: bytes | None = None, crc: bool = True,
          bad_crc: bool = False) -> bytes:
    """One block as libbgcode writes it: header, parameters, data, CRC32."""
    stored = zlib.compress(data) if compression == 1 else data
    header = struct.pack("<HHI", kind, compression, len(data))
    if compression:
        header += struct.pack("<I", len(stored))
    if params is None:
        params = struct.pack("<HHH", 0, 16, 16) if kind == THUMBNAIL else struct.pack("<H", 0)
    body = header + params + stored
    if not crc:
        return body
    checksum = zlib.crc32(body) ^ (1 if bad_crc else 0)
    return body + struct.pack("<I", checksum)


def bgcode(*blocks: bytes, version: int = 1, crc: bool = True) -> bytes:
    return b"GCDE" + struct.pack("<IH", version, 1 if crc else 0) + b"".join(blocks)


def standard(crc: bool = True, gcode_block: bytes | None = None) -> bytes:
    return bgcode(
        block(FILE_METADATA, b"Producer=PrusaSlicer 2.8.0\n", crc=crc),
        block(PRINTER, b"printer_model=MK4\nnozzle_diameter=0.6\nlayer_height=0.25\nmax_layer_z=12.50\n", crc=crc),
        block(THUMBNAIL, b"\x89PNG fake image bytes", crc=crc),
        block(PRINT, b"filament used [mm]=100.5\nfilament used [g]=0.30\n"
                     b"estimated printing time (normal mode)=1h 2m 3s\n"
                     b"estimated printing time (silent mode)=2h\n", compression=1, crc=crc),
        block(SLICER, b"gcode_flavor=marlin2\nlayer_height=0.25\nnozzle_diameter=0.6\n", compression=1, crc=crc),
        gcode_block if gcode_block is not None else block(GCODE, b"\xff" * 64, compression=3, crc=crc),
        crc=crc,
    )


EXPECTED = {
    "format": "bgcode",
    "producer": {"name": "PrusaSlicer", "version": "2.8.0"},
    "flavor": "marlin2",
    "print_time_s": 3723.0,
    "filament_used_mm": 100.5,
    "filament_used_g": 0.3,
    "layer_height_mm": 0.25,
    "nozzle_diameter_mm": 0.6,
    "bbox_mm": {"min": [None, None, None], "max": [None, None, 12.5]},
    "printer_model": "MK4",
}


def _extract(tmp_path: Path, data: bytes) -> dict:
    path = tmp_path / "part.bgcode"
    path.write_bytes(data)
    return extract_metadata(path, path.name)


@pytest.mark.parametrize("crc", [True, False], ids=["crc32", "no-checksum"])
def test_metadata_blocks(tmp_path: Path, crc: bool) -> None:
    assert _extract(tmp_path, standard(crc=crc)) == EXPECTED


def test_corrupt_gcode_blocks_lose_only_the_layer_count(tmp_path: Path) -> None:
    # heatshrink garbage with a wrong CRC, then trailing junk: the metadata stands, no layer count
    junk = block(GCODE, b"not heatshrink at all", compression=3, bad_crc=True) + b"\x00junk"
    assert _extract(tmp_path, standard(gcode_block=junk)) == EXPECTED


def test_real_sample_blocks() -> None:
    blocks = read_metadata_blocks(SAMPLES / "prusaslicer" / "prusa_slicer.bgcode")
    assert set(blocks) == {"FileMetadata", "PrinterMetadata", "PrintMetadata", "SlicerMetadata"}
    assert blocks["FileMetadata"]["Producer"] == "PrusaSlicer 2.9.1"
    assert blocks["PrintMetadata"]["estimated printing time (normal mode)"] == "12m 55s"


@pytest.mark.parametrize(("compression", "window"), [(2, 11), (3, 12)], ids=["heatshrink-11-4", "heatshrink-12-4"])
def test_heatshrink_blocks_are_decoded(tmp_path: Path, compression: int, window: int) -> None:
    """Metadata in heatshrink is read; G-code in heatshrink is decoded to count layers."""
    text = b"".join(b";LAYER_CHANGE\n;Z:%.1f\nG1 X1 Y2 E0.1\n" % (0.2 * i) for i in range(1, 8))
    packed = heatshrink2.compress(text, window_sz2=window, lookahead_sz2=4)
    meta_text = b"estimated printing time (normal mode)=1m 1s\n"
    meta = heatshrink2.compress(meta_text, window_sz2=window, lookahead_sz2=4)

    def raw_block(kind: int, data: bytes, size: int) -> bytes:
        body = struct.pack("<HHII", kind, compression, size, len(data)) + struct.pack("<H", 0) + data
        return body + struct.pack("<I", zlib.crc32(body))

    data = bgcode(
        block(FILE_METADATA, b"Producer=PrusaSlicer 2.9.0\n"),
        raw_block(PRINT, meta, len(meta_text)),
        raw_block(GCODE, packed, len(text)),
    )
    assert _extract(tmp_path, data) == {
        "format": "bgcode", "producer": {"name": "PrusaSlicer", "version": "2.9.0"},
        "print_time_s": 61.0, "layer_count": 7,
    }


def test_meatpack_decoding() -> None:
    # 0xFF 0xFF 0xFB enables packing; "G1" = 'G' (0xD) then '1' (0x1) -> byte 0x1D;
    # " X" cannot pack ' ' in no-space mode: 0xF low nibble = full char next, 'X' (0xE) high nibble
    packed = bytes([0xFF, 0xFF, 0xFB, 0x1D, 0xEF]) + b" " + bytes([0xC1]) + bytes([0xFF, 0xFF, 0xFA]) + b";LAYER_CHANGE\n"
    assert unpack(packed) == b"G1 X1\n;LAYER_CHANGE\n"


def test_real_meatpack_and_heatshrink_samples_count_layers() -> None:
    # max_layer_z / layer_height agree with the counted ;LAYER_CHANGE lines
    more = SAMPLES.parent / "more-samples" / "prusaslicer"
    mini = extract_metadata(more / "mini_cube_ps2.8.1.bgcode", "mini_cube_ps2.8.1.bgcode")  # heatshrink 12,4 + MeatPack
    assert mini["layer_count"] == round(6.2 / 0.2)
    heat = extract_metadata(more / "test_binary_heatshrink.bgcode", "test_binary_heatshrink.bgcode")  # heatshrink 11,4
    assert heat["layer_count"] == 185  # 46.2 mm / 0.25 mm = 184.8: first layer differs
    assert heat["thumbnail"]["source_format"] == "png"
    assert mini["thumbnail"]["source_format"] == "qoi"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"; generated by PrusaSlicer\nG1 X1\n", "not binary G-code"),
        (bgcode(block(FILE_METADATA, b"Producer=X 1\n"), version=2), "version 2 is not supported"),
        (bgcode(block(FILE_METADATA, b"Producer=X 1\n", bad_crc=True), block(GCODE, b"")), "CRC32 mismatch in FileMetadata"),
        (bgcode(block(FILE_METADATA, b"Producer=X 1\n")), "before any GCode block"),
        (bgcode(block(PRINT, b"filament used [mm]=1\n", compression=1))[:-10], "truncated"),
        (bgcode(block(9, b"x")), "unknown block type 9 at byte 10"),
        (bgcode(block(PRINT, b"x=1\n", compression=7)), "unknown compression 7"),
        (bgcode(block(PRINT, b"x=1\n", params=struct.pack("<H", 5)), block(GCODE, b"")), "unknown encoding 5"),
        (b"GCDE" + struct.pack("<IH", 1, 1) + struct.pack("<HH", 0, 1), "cut off"),
    ],
    ids=["empty", "text", "version", "crc", "no-gcode", "truncated", "type", "compression", "encoding", "header-cut"],
)
def test_bad_files_fail_with_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        _extract(tmp_path, data)


def test_bad_deflate_data(tmp_path: Path) -> None:
    raw = b"not deflate"
    header = struct.pack("<HHII", PRINT, 1, 100, len(raw)) + struct.pack("<H", 0) + raw
    data = bgcode(header + struct.pack("<I", zlib.crc32(header)), block(GCODE, b""))
    with pytest.raises(ExtractionError, match="bad deflate data"):
        _extract(tmp_path, data)
