"""Geometric facts of triangle meshes (STL, 3MF): count, box, area, volume.

The geometry goes through trimesh (vertex merging, watertightness and
winding checks, area, signed volume); this module only sums over parts and
decides what may be stated:

* ``triangle_count``: triangles as stored (degenerate ones included);
* ``bbox_mm``: over all vertices of all parts;
* ``surface_area_mm2``: sum of triangle areas;
* ``volume_mm3``: sum of ``|volume|`` of the parts, stated only when *every*
  part is closed (each edge shared by exactly two faces) with consistent
  winding - the volume of an open surface is not a fact, so it is absent.

A mesh without triangles has ``triangle_count`` 0 and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import trimesh


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
        used = vertices[np.unique(faces)]
        lo = np.minimum(lo, used.min(axis=0))
        hi = np.maximum(hi, used.max(axis=0))
        body = trimesh.Trimesh(vertices=vertices, faces=faces, process=True, validate=False)
        area += float(body.area)
        if closed and body.is_watertight and body.is_winding_consistent:
            volume += abs(float(body.volume))
        else:
            closed = False
    out: dict = {"triangle_count": triangles}
    if triangles == 0:
        return out
    out["bbox_mm"] = {"min": _rounded(lo), "max": _rounded(hi)}
    out["surface_area_mm2"] = _significant(area)
    if closed:
        out["volume_mm3"] = _significant(volume)
    return out


def soup_to_indexed(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3, 3)`` triangle corners -> ``(vertices (3n, 3), faces (n, 3))``.

    Vertices are not merged here; trimesh merges coincident ones.
    """
    vertices = np.asarray(triangles, dtype=np.float64).reshape(-1, 3)
    faces = np.arange(len(vertices), dtype=np.int64).reshape(-1, 3)
    return vertices, faces


def _significant(value: float) -> float:
    """9 significant digits: float noise goes, a micron-scale volume stays."""
    return float(f"{value:.9g}")


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) + 0.0 for v in values]  # + 0.0: no "-0.0" in JSON
