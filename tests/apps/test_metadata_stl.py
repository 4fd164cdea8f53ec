"""STL: binary/ASCII detection by size, geometry facts, documented decisions for odd files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
from extractor.metadata import ExtractionError, extract_metadata
from manifest import SAMPLES

# a unit cube as 12 outward-facing triangles
CUBE = trimesh.creation.box(extents=(1.0, 1.0, 1.0)).triangles + 0.5


def binary_stl(triangles: np.ndarray, header: bytes = b"binary test") -> bytes:
    records = b"".join(
        struct.pack("<3f", 0, 0, 0) + struct.pack("<9f", *tri.ravel()) + b"\x00\x00" for tri in triangles
    )
    return header.ljust(80, b"\x00")[:80] + struct.pack("<I", len(triangles)) + records


def ascii_stl(triangles: np.ndarray, name: str = "cube", newline: str = "\n") -> bytes:
    lines = [f"solid {name}"]
    for tri in triangles:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {x:.6e} {y:.6e} {z:.6e}" for x, y, z in tri]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    return (newline.join(lines) + newline).encode()


def _extract(tmp_path: Path, data: bytes, name: str = "part.stl") -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    return extract_metadata(path, name)


CUBE_FACTS = {
    "format": "stl",
    "bbox_mm": {"min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 1.0]},
    "triangle_count": 12,
    "volume_mm3": 1.0,
    "surface_area_mm2": 6.0,
}


def test_binary(tmp_path: Path) -> None:
    assert _extract(tmp_path, binary_stl(CUBE)) == CUBE_FACTS


def test_binary_whose_header_starts_with_solid(tmp_path: Path) -> None:
    assert _extract(tmp_path, binary_stl(CUBE, header=b"solid cube exported by CAD")) == CUBE_FACTS


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR-only"])
def test_ascii_line_endings(tmp_path: Path, newline: str) -> None:
    assert _extract(tmp_path, ascii_stl(CUBE, newline=newline)) == CUBE_FACTS


def test_ascii_several_solids_are_all_read(tmp_path: Path) -> None:
    moved = CUBE + np.array([2.0, 0.0, 0.0])
    metadata = _extract(tmp_path, ascii_stl(CUBE, "a") + ascii_stl(moved, "b"))
    assert metadata["triangle_count"] == 24
    assert metadata["volume_mm3"] == pytest.approx(2.0)
    assert metadata["bbox_mm"]["max"] == [3.0, 1.0, 1.0]


def test_inverted_winding_still_gives_a_positive_volume(tmp_path: Path) -> None:
    assert _extract(tmp_path, binary_stl(CUBE[:, ::-1]))["volume_mm3"] == pytest.approx(1.0)


def test_open_mesh_states_no_volume(tmp_path: Path) -> None:
    metadata = _extract(tmp_path, binary_stl(CUBE[:10]))
    assert metadata["triangle_count"] == 10
    assert "volume_mm3" not in metadata  # the volume of an open surface is not a fact
    assert metadata["surface_area_mm2"] == pytest.approx(5.0)


def test_closed_but_inconsistently_wound_mesh_states_no_volume(tmp_path: Path) -> None:
    flipped = CUBE.copy()
    flipped[0] = flipped[0][::-1]
    metadata = _extract(tmp_path, binary_stl(flipped))
    assert metadata["triangle_count"] == 12 and metadata["surface_area_mm2"] == pytest.approx(6.0)
    assert "volume_mm3" not in metadata


@pytest.mark.parametrize(
    ("data", "name"),
    [(binary_stl(CUBE[:0]), "empty binary"), (b"solid empty\nendsolid empty\n", "empty ASCII")],
)
def test_empty_stl_is_processed_with_zero_triangles(tmp_path: Path, data: bytes, name: str) -> None:
    assert _extract(tmp_path, data) == {"format": "stl", "triangle_count": 0}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", r"empty \(0 bytes\)"),
        (binary_stl(CUBE)[:-7], "not ASCII"),
        (binary_stl(CUBE, header=b"solid but truncated")[:-7], "truncated or padded"),
        (b"PK\x03\x04 a zip, not an STL" + b"\x00" * 100, "is not STL"),
        (ascii_stl(CUBE).replace(b"vertex 1.000000e+00", b"vertex one", 1), "malformed ASCII STL"),
        (ascii_stl(CUBE).replace(b"endloop", b"endloop foo", 1), "malformed ASCII STL"),
        (binary_stl(np.where(CUBE == 1.0, np.nan, CUBE)), "non-finite vertex coordinate"),
    ],
    ids=["empty-file", "binary-size-mismatch", "solid-header-truncated", "not-stl", "bad-number",
         "bad-keyword", "nan"],
)
def test_bad_stl_fails_with_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason):
        _extract(tmp_path, data)


def test_nonstandard_sample_fails_deterministically() -> None:
    path = SAMPLES / "broken" / "20mmbox-nonstandard.stl"
    for _ in range(2):
        with pytest.raises(ExtractionError, match="weirdvalue"):
            extract_metadata(path, path.name)


def test_cr_only_sample_is_read() -> None:
    path = SAMPLES / "broken" / "20mmbox-CR.stl"
    metadata = extract_metadata(path, path.name)
    assert metadata["triangle_count"] == 12
    assert metadata["volume_mm3"] == pytest.approx(8000.0)
    assert metadata["bbox_mm"] == {"min": [0.0, 0.0, 0.0], "max": [20.0, 20.0, 20.0]}


@pytest.mark.parametrize(
    "relative", ["stl/binary/rear_case.stl", "stl/binary/20mm-xyz-cube.stl", "stl/ascii/20mmbox-LF.stl"]
)
def test_geometry_agrees_with_trimesh_loader(relative: str) -> None:
    """An independent load (trimesh's own STL reader) gives the same geometry."""
    path = SAMPLES / relative
    metadata = extract_metadata(path, path.name)
    reference = trimesh.load_mesh(path, process=True)
    assert metadata["triangle_count"] == len(reference.faces)
    assert metadata["bbox_mm"]["min"] == pytest.approx(reference.bounds[0].tolist(), abs=1e-5)
    assert metadata["bbox_mm"]["max"] == pytest.approx(reference.bounds[1].tolist(), abs=1e-5)
    assert metadata["surface_area_mm2"] == pytest.approx(reference.area, rel=1e-6)
    assert reference.is_watertight
    assert metadata["volume_mm3"] == pytest.approx(abs(reference.volume), rel=1e-6)


def test_binary_stl_with_trailing_bytes_is_read_and_says_so(tmp_path: Path) -> None:
    """numpy-stl's own test file has one byte after its last triangle; slicers open it."""
    data = binary_stl(CUBE, header=b"solid cube with a stray byte") + b"\n"
    metadata = _extract(tmp_path, data)
    assert metadata["triangle_count"] == 12 and metadata["trailing_bytes"] == 1
    assert metadata["volume_mm3"] == pytest.approx(1.0)
