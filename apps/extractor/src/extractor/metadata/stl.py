"""STL, binary and ASCII, parsed by numpy-stl.

Binary or ASCII is decided by the triangle count, never by a leading
``solid`` (CAD exporters write binary files whose 80-byte header starts with
``solid``): a file of at least ``84 + 50 * n`` bytes, ``n`` the little-endian
``u32`` at byte 80, is binary when it is exactly that long, or - with at
least one triangle - longer by less than one 50-byte record and not an
ASCII ``solid ... facet`` text (a writer's stray bytes after the last
triangle, e.g. numpy-stl's own test file has one: every slicer opens it). The extra bytes are ignored
and said in ``trailing_bytes``. Otherwise a file whose first word is
``solid`` is ASCII; anything else is not STL.

Decisions (tested in tests/apps/test_metadata_stl.py):

* an empty STL (valid structure, 0 triangles) is *processed* with
  ``triangle_count`` 0 and no geometry;
* ASCII files with old-Mac CR-only line endings are read (line endings are
  normalised first);
* ASCII files whose numbers do not parse (e.g. ``facet normal +inf -inf
  weirdvalue``) or whose keywords are wrong (``endloop foo``) *fail* with the
  parser's message: we do not guess what a malformed facet meant;
* several ``solid`` blocks in one ASCII file are all read;
* STL declares no unit: ``unit`` is absent and coordinates are taken as mm,
  the convention every slicer applies; ``object_count`` is absent (STL has
  no object structure).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from stl import Mode
from stl import mesh as stl_mesh

from .errors import ExtractionError
from .mesh import mesh_facts, soup_to_indexed

_HEADER = 80
_RECORD = 50
#: Bytes after the last triangle a binary STL may carry (ignored, reported):
#: fewer than one record, so a file cut or padded by whole triangles is not taken for one.
MAX_TRAILING_BYTES = _RECORD - 1


def extract_stl(path: Path) -> dict:
    """Metadata of an STL file: ``{"format": "stl", "triangle_count", "bbox_mm", ...}``.

    Raises:
        ExtractionError: empty file, neither binary (size mismatch) nor ASCII
            (no leading ``solid``), malformed ASCII, non-finite coordinates.
    """
    size = path.stat().st_size
    if size == 0:
        raise ExtractionError(f"{path.name!r} is empty (0 bytes): no STL")
    with path.open("rb") as fh:
        head = fh.read(_HEADER + 4)
    if len(head) == _HEADER + 4:
        (count,) = struct.unpack("<I", head[_HEADER:])
        expected = _HEADER + 4 + _RECORD * count
        if size == expected:
            triangles = _read_binary(path, count)
            return {"format": "stl", **_facts(triangles, path.name)}
        if count > 0 and expected < size <= expected + MAX_TRAILING_BYTES and not _looks_ascii(path):
            triangles = _read_binary(path, count)
            return {"format": "stl", **_facts(triangles, path.name), "trailing_bytes": size - expected}
    else:
        count = None
    binary_need = (
        f"binary STL needs {_HEADER + 4 + _RECORD * count} bytes for the {count} triangles its header counts"
        if count is not None
        else "binary STL needs at least 84 bytes"
    )
    if head.lstrip()[:5].lower() != b"solid":
        raise ExtractionError(
            f"{path.name!r} is not STL: not binary (file has {size} bytes, {binary_need}) "
            f"and not ASCII (does not start with 'solid')"
        )
    data = path.read_bytes()
    if b"\x00" in data:
        raise ExtractionError(
            f"{path.name!r}: binary STL (NUL bytes) whose size does not match: file has {size} bytes, "
            f"{binary_need}: truncated or padded"
        )
    triangles = _read_ascii(data, path.name)
    return {"format": "stl", **_facts(triangles, path.name)}


def _looks_ascii(path: Path) -> bool:
    """An ASCII STL: starts with ``solid`` and has ``facet``/``endsolid`` text in its first KiB."""
    with path.open("rb") as fh:
        head = fh.read(1024)
    return head.lstrip()[:5].lower() == b"solid" and b"\x00" not in head and (
        b"facet" in head.lower() or b"endsolid" in head.lower()
    )


def _read_binary(path: Path, count: int) -> np.ndarray:
    """The ``(count, 3, 3)`` corners of a binary STL, read with numpy-stl's record dtype
    (only the ``count`` records the header states: trailing bytes are left alone)."""
    with path.open("rb") as fh:
        fh.seek(_HEADER + 4)
        records = np.fromfile(fh, dtype=stl_mesh.Mesh.dtype, count=count)
    return records["vectors"]


def _read_ascii(data: bytes, name: str) -> np.ndarray:
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        solids = list(
            stl_mesh.Mesh.from_multi_file(
                name, fh=io.BytesIO(text), mode=Mode.ASCII, speedups=False, calculate_normals=False
            )
        )
    except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
        detail = exc.args[-1] if isinstance(exc, RuntimeError) and exc.args else exc
        raise ExtractionError(f"{name!r}: malformed ASCII STL: {detail}") from exc
    if not solids:
        raise ExtractionError(f"{name!r}: ASCII STL without a solid")
    return np.concatenate([s.vectors for s in solids]) if len(solids) > 1 else solids[0].vectors


def _facts(triangles: np.ndarray, name: str) -> dict:
    triangles = np.asarray(triangles, dtype=np.float64)
    if not np.isfinite(triangles).all():
        bad = int(np.argwhere(~np.isfinite(triangles).reshape(len(triangles), -1).all(axis=1))[0][0])
        raise ExtractionError(f"{name!r}: triangle {bad} has a non-finite vertex coordinate (NaN or infinity)")
    return mesh_facts([soup_to_indexed(triangles)])
