"""Geometric facts of triangle meshes (STL, 3MF): count, box, area, volume.

Vectorised numpy over the arrays the parsers (numpy-stl, the 3MF reader) return, in
bounded chunks, because a 256 MiB binary STL holds 5 million triangles.
Measured on 1.3 million triangles here: building a ``trimesh.Trimesh``
(vertex merging, watertightness) took 8.5 s and 830 MB more RSS, this 4 s and
255 MB. The tests cross-check the results against trimesh.

* ``triangle_count``: triangles as stored (degenerate ones included);
* ``bbox_mm``: over the vertices the triangles use, all parts;
* ``surface_area_mm2``: sum of triangle areas;
* ``volume_mm3``: sum over parts of ``|signed volume|`` (divergence theorem),
  stated only when *every* part is closed - after merging coincident
  vertices, each undirected edge belongs to exactly two triangles - and
  consistently wound (each directed edge occurs once). The volume of an open
  surface is not a fact, so it is then absent.

A mesh without triangles has ``triangle_count`` 0 and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Triangles per chunk for area/volume sums and edge keys (bounds temporary
#: memory: ~1 MB of float64 corners per chunk; numpy still runs at full speed).
CHUNK_TRIANGLES = 16_384


def mesh_facts(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Facts of a set of meshes already transformed into millimetres.

    Args:
        parts: ``(vertices, faces)`` pairs: ``vertices`` float array of shape
            ``(n, 3)`` in mm, ``faces`` int array of shape ``(m, 3)`` indexing
            it. Each part is one closed body when the file is well formed
            (an STL file, one placed 3MF mesh object).

    Returns:
        ``{"triangle_count", "bbox_mm", "surface_area_mm2", "volume_mm3"}``
        with the rules of the module docstring; box coordinates rounded to
        6 decimals (1 nm), area and volume to 9 significant digits.
    """
    triangles = 0
    area = 0.0
    volume = 0.0
    closed = True
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for vertices, faces in parts:
        if len(faces) == 0:
            continue
        triangles += len(faces)
        mask = np.zeros(len(vertices), dtype=bool)
        mask[faces.ravel()] = True
        used = vertices[mask]
        lo = np.minimum(lo, used.min(axis=0))
        hi = np.maximum(hi, used.max(axis=0))
        part_area, part_volume = _area_and_volume(vertices, faces, origin=(used.min(axis=0) + used.max(axis=0)) / 2)
        area += part_area
        if closed and is_closed_and_consistent(vertices, faces):
            volume += abs(part_volume)
        else:
            closed = False
    return _mesh_facts(triangles, lo, hi, area, volume if closed else None)


def placed_mesh_facts(meshes: Iterable[tuple[np.ndarray, np.ndarray, list[np.ndarray]]], scale: float) -> dict:
    """``mesh_facts`` of meshes placed by transforms, without copying them per placement.

    Args:
        meshes: ``(vertices, faces, transforms)``: one mesh (float32/64
            ``(n, 3)`` vertices, int ``(m, 3)`` faces, in the file's unit) and
            the 4x4 row-vector transforms (3MF Core spec 3.3: a point is
            ``[x y z 1] @ M``) of each of its placements.
        scale: millimetres per file unit.

    Returns:
        As ``mesh_facts``. Closedness is a property of the mesh (checked
        once, whatever its placements); the volume of a placement is the
        mesh's signed volume times ``|det|`` of its linear part; area and box
        are computed per placement in chunks of ``CHUNK_TRIANGLES``, so memory
        stays ~ the mesh plus one chunk (the edge keys of the closedness
        check: 24 bytes per triangle) however often it is placed.
    """
    triangles = 0
    area = 0.0
    volume = 0.0
    closed = True
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for vertices, faces, transforms in meshes:
        if len(faces) == 0 or not transforms:
            continue
        triangles += len(faces) * len(transforms)
        mask = np.zeros(len(vertices), dtype=bool)
        mask[faces.ravel()] = True
        used = np.flatnonzero(mask)
        del mask
        local_lo = np.full(3, np.inf)
        local_hi = np.full(3, -np.inf)
        for begin in range(0, len(used), 3 * CHUNK_TRIANGLES):
            part = vertices[used[begin : begin + 3 * CHUNK_TRIANGLES]]
            local_lo = np.minimum(local_lo, part.min(axis=0))
            local_hi = np.maximum(local_hi, part.max(axis=0))
        origin = (local_lo + local_hi) / 2
        mesh_closed = closed and is_closed_and_consistent(vertices, faces)
        local_volume = _area_and_volume(vertices, faces, origin)[1] if mesh_closed else 0.0
        closed = mesh_closed
        for transform in transforms:
            linear = transform[:3, :3] * scale
            shift = transform[3, :3] * scale
            for begin in range(0, len(used), 3 * CHUNK_TRIANGLES):
                placed = vertices[used[begin : begin + 3 * CHUNK_TRIANGLES]].astype(np.float64) @ linear + shift
                if not np.isfinite(placed).all():
                    raise ValueError("a vertex coordinate is not finite once placed")
                lo = np.minimum(lo, placed.min(axis=0))
                hi = np.maximum(hi, placed.max(axis=0))
            area += _placed_area(vertices, faces, linear)
            if closed:
                volume += abs(local_volume * float(np.linalg.det(linear)))
    return _mesh_facts(triangles, lo, hi, area, volume if closed else None)


def _mesh_facts(triangles: int, lo: np.ndarray, hi: np.ndarray, area: float, volume: float | None) -> dict:
    """``triangle_count``, and for a non-empty mesh ``bbox_mm``, ``surface_area_mm2`` and, when the
    mesh is closed (``volume`` not None), ``volume_mm3``."""
    out: dict = {"triangle_count": triangles}
    if triangles == 0:
        return out
    out["bbox_mm"] = {"min": _rounded(lo), "max": _rounded(hi)}
    out["surface_area_mm2"] = _significant(area)
    if volume is not None:
        out["volume_mm3"] = _significant(volume)
    return out


def _placed_area(vertices: np.ndarray, faces: np.ndarray, linear: np.ndarray) -> float:
    """Total triangle area once the linear map ``linear`` (row vectors) is applied, in chunks."""
    area = 0.0
    for begin in range(0, len(faces), CHUNK_TRIANGLES):
        corners = vertices[faces[begin : begin + CHUNK_TRIANGLES]].astype(np.float64) @ linear
        v0, v1, v2 = corners[:, 0], corners[:, 1], corners[:, 2]
        area += 0.5 * float(np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1).sum())
    return area


def is_closed_and_consistent(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Every edge shared by exactly two triangles, traversed once each way.

    Coincident vertices (bitwise-equal coordinates, ``-0.0 == 0.0``) are
    merged first: STL stores every triangle's corners separately.

    Memory: edges are checked in ``EDGE_BUCKETS`` groups (by their lower
    vertex index), each sorted on its own, so the keys held at once are
    ~24 / ``EDGE_BUCKETS`` bytes per triangle, plus one chunk of triangles.
    """
    inverse = _merge_coincident(vertices)
    if (3 * len(faces)) % 2:
        return False  # an odd number of edges cannot pair up
    count = np.int64(inverse.max()) + 1
    sizes = np.zeros(EDGE_BUCKETS, dtype=np.int64)
    for start, end in _edges(inverse, faces):
        sizes += np.bincount(np.minimum(start, end) % EDGE_BUCKETS, minlength=EDGE_BUCKETS)
    for bucket in range(EDGE_BUCKETS):
        undirected = np.empty(sizes[bucket], dtype=np.int64)
        directed = np.empty(sizes[bucket], dtype=np.int64)
        filled = 0
        for start, end in _edges(inverse, faces):
            low = np.minimum(start, end)
            mine = low % EDGE_BUCKETS == bucket
            low, high, a, b = low[mine], np.maximum(start, end)[mine], start[mine], end[mine]
            undirected[filled : filled + len(low)] = low * count + high
            directed[filled : filled + len(low)] = a * count + b
            filled += len(low)
        undirected.sort()
        # sorted, every key must occur exactly twice: pairs equal, neighbours of pairs differ
        if len(undirected) % 2 or not (undirected[0::2] == undirected[1::2]).all():
            return False
        if (undirected[1:-1:2] == undirected[2::2]).any():
            return False
        del undirected
        directed.sort()
        if (directed[1:] == directed[:-1]).any():
            return False
    return True


#: Groups the edges are checked in (``is_closed_and_consistent``): fewer keys in memory at once.
EDGE_BUCKETS = 8


def _edges(inverse: np.ndarray, faces: np.ndarray):
    """``(start, end)`` merged vertex indices (int64) of every triangle edge, chunk by chunk."""
    for begin in range(0, len(faces), CHUNK_TRIANGLES):
        chunk = inverse[faces[begin : begin + CHUNK_TRIANGLES]].astype(np.int64)
        yield chunk.ravel(), np.roll(chunk, -1, axis=1).ravel()


def _merge_coincident(vertices: np.ndarray) -> np.ndarray:
    """Index of each vertex's group of bitwise-equal coordinates (``-0.0`` is ``0.0``).

    A lexsort on the coordinates' bit patterns: exact, and much faster than
    ``np.unique`` over rows.
    """
    keys = np.ascontiguousarray(vertices + 0.0)
    bits = keys.view(np.uint32 if keys.dtype.itemsize == 4 else np.uint64).reshape(-1, 3)
    order = np.lexsort((bits[:, 2], bits[:, 1], bits[:, 0]))
    ordered = bits[order]
    starts = np.empty(len(order), dtype=bool)
    starts[:1] = True
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    del ordered
    inverse = np.empty(len(order), dtype=np.int32 if len(order) < 2**31 else np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return inverse


def _area_and_volume(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray) -> tuple[float, float]:
    """Total area and signed volume, relative to ``origin`` for precision."""
    area = 0.0
    volume = 0.0
    for begin in range(0, len(faces), CHUNK_TRIANGLES):
        corners = vertices[faces[begin : begin + CHUNK_TRIANGLES]].astype(np.float64) - origin
        v0, v1, v2 = corners[:, 0], corners[:, 1], corners[:, 2]
        area += 0.5 * float(np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1).sum())
        volume += float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum()) / 6.0
    return area, volume


def soup_to_indexed(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3, 3)`` triangle corners -> ``(vertices (3n, 3), faces (n, 3))``.

    The vertices keep the corners' dtype (float32 for STL) and are not
    merged here.
    """
    vertices = np.asarray(triangles).reshape(-1, 3)
    faces = np.arange(len(vertices), dtype=np.int64).reshape(-1, 3)
    return vertices, faces


def _significant(value: float) -> float:
    """9 significant digits: float noise goes, a micron-scale volume stays."""
    return float(f"{value:.9g}")


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) + 0.0 for v in values]  # + 0.0: no "-0.0" in JSON
