"""3MF (3D Manufacturing Format), read with lib3mf, the 3MF Consortium's
reference implementation (https://github.com/3MFConsortium/lib3mf).

lib3mf enforces the OPC package rules: the 3D model part is the target of
the ``http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel``
relationship in ``_rels/.rels``; a package without it, or with unparsable
XML, fails to load and the file fails with lib3mf's message.

Field semantics (docs/metadata.md):

* ``unit``: the model's declared ``unit`` attribute (3MF Core spec 3.4.1:
  micron, millimeter, centimeter, inch, foot, meter; default millimeter);
* ``object_count``: the ``<object>`` resources of the model (mesh and
  components objects alike), not the build items that place them;
* geometry (``triangle_count``, ``bbox_mm``, ``surface_area_mm2``,
  ``volume_mm3``) describes the *build*: every build item, its components
  resolved recursively, with the item and component transforms applied and
  converted to millimetres; an object placed three times counts three times;
* ``producer``: the ``Application`` metadata (3MF Core spec 2.3.1), when
  present, split into name and version.
"""

from __future__ import annotations

import ctypes
import zipfile
from functools import cache
from pathlib import Path
from xml.etree import ElementTree

import lib3mf
import numpy as np

from .errors import ExtractionError
from .mesh import mesh_facts
from .values import split_version

#: lib3mf ``ModelUnit`` -> (spec name, millimetres per unit), 3MF Core spec 3.4.1.
UNITS: dict[int, tuple[str, float]] = {
    lib3mf.ModelUnit.MicroMeter: ("micron", 0.001),
    lib3mf.ModelUnit.MilliMeter: ("millimeter", 1.0),
    lib3mf.ModelUnit.CentiMeter: ("centimeter", 10.0),
    lib3mf.ModelUnit.Inch: ("inch", 25.4),
    lib3mf.ModelUnit.Foot: ("foot", 304.8),
    lib3mf.ModelUnit.Meter: ("meter", 1000.0),
}
#: OPC relationship type of the 3D model part (3MF Core spec 2.1, table 2-1).
MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
_OPC_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
#: Components nesting deeper than this is treated as a cycle.
MAX_COMPONENT_DEPTH = 32


@cache
def _wrapper() -> lib3mf.Wrapper:
    return lib3mf.get_wrapper()


def extract_3mf(path: Path) -> dict:
    """Metadata of a 3MF package: ``{"format": "3mf", "unit", "object_count", ...}``.

    Raises:
        ExtractionError: not a ZIP/OPC package, no 3D model part, malformed
            model XML, build item or component referencing a missing object,
            component cycle, non-finite coordinates.
    """
    if path.stat().st_size == 0:
        raise ExtractionError(f"{path.name!r} is empty (0 bytes): no 3MF package")
    _check_package(path)
    wrapper = _wrapper()
    model = wrapper.CreateModel()
    reader = model.QueryReader("3mf")
    try:
        reader.ReadFromFile(str(path))
    except lib3mf.ELib3MFException as exc:
        raise ExtractionError(f"{path.name!r}: the 3MF model cannot be read: {_message(exc)}") from exc
    try:
        return _facts(wrapper, model, path.name)
    except lib3mf.ELib3MFException as exc:
        raise ExtractionError(f"{path.name!r}: invalid 3MF model: {_message(exc)}") from exc


def _check_package(path: Path) -> None:
    """Name the two most common package faults plainly before lib3mf reads it.

    lib3mf rejects them too, but with messages such as "Could not read OPC
    Relationship Set"; this says what is missing.
    """
    if not zipfile.is_zipfile(path):
        raise ExtractionError(f"{path.name!r} is not a 3MF package: not a ZIP archive")
    with zipfile.ZipFile(path) as package:
        try:
            rels = package.read("_rels/.rels")
        except KeyError:
            raise ExtractionError(
                f"{path.name!r}: no 3D model part: the package has no _rels/.rels relationships part"
            ) from None
    try:
        root = ElementTree.fromstring(rels)
    except ElementTree.ParseError as exc:
        raise ExtractionError(f"{path.name!r}: _rels/.rels is not well-formed XML ({exc})") from exc
    targets = [r.get("Target") for r in root.iter(_OPC_RELS) if r.get("Type") == MODEL_RELATIONSHIP]
    if not targets:
        raise ExtractionError(
            f"{path.name!r}: no 3D model part: _rels/.rels has no relationship of type {MODEL_RELATIONSHIP}"
        )


def _facts(wrapper: lib3mf.Wrapper, model: lib3mf.Model, name: str) -> dict:
    unit_name, scale = UNITS[model.GetUnit()]
    out: dict = {"format": "3mf", "unit": unit_name}
    application = _application(model)
    if application:
        app_name, app_version = split_version(application)
        out["producer"] = {"name": app_name, **({"version": app_version} if app_version else {})}
    objects = model.GetObjects()
    count = 0
    while objects.MoveNext():
        count += 1
    out["object_count"] = count
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    items = model.GetBuildItems()
    while items.MoveNext():
        item = items.GetCurrent()
        transform = _matrix(item.GetObjectTransform()) if item.HasObjectTransform() else np.eye(4)
        _collect(wrapper, item.GetObjectResource(), transform, parts, name, depth=0)
    scaled = [(vertices * scale, faces) for vertices, faces in parts]
    out.update(mesh_facts(scaled))
    return out


def _collect(
    wrapper: lib3mf.Wrapper,
    resource: lib3mf.Object,
    transform: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray]],
    name: str,
    depth: int,
) -> None:
    """Append the placed meshes of ``resource`` (mesh or components object)."""
    if depth > MAX_COMPONENT_DEPTH:
        raise ExtractionError(f"{name!r}: components nest deeper than {MAX_COMPONENT_DEPTH} levels (cycle?)")
    if resource.IsMeshObject():
        vertices, faces = _mesh_arrays(wrapper, resource)
        placed = vertices @ transform[:3, :3] + transform[3, :3]
        if not np.isfinite(placed).all():
            raise ExtractionError(
                f"{name!r}: object {resource.GetResourceID()} has a non-finite vertex coordinate once placed"
            )
        parts.append((placed, faces))
    elif resource.IsComponentsObject():
        for index in range(resource.GetComponentCount()):
            component = resource.GetComponent(index)
            local = _matrix(component.GetTransform()) if component.HasTransform() else np.eye(4)
            _collect(wrapper, component.GetObjectResource(), local @ transform, parts, name, depth + 1)


def _mesh_arrays(wrapper: lib3mf.Wrapper, mesh: lib3mf.MeshObject) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(n, 3)`` float64 and faces ``(m, 3)`` int64 of a mesh object.

    Uses lib3mf's C API (``lib3mf_meshobject_getvertices`` /
    ``..._gettriangleindices``) into numpy buffers: the Python binding's
    ``GetVertices`` builds one ctypes object per vertex, too slow for
    million-triangle meshes.
    """
    n_vertices = mesh.GetVertexCount()
    n_triangles = mesh.GetTriangleCount()
    vertices = np.zeros((n_vertices, 3), dtype=np.float32)
    faces = np.zeros((n_triangles, 3), dtype=np.uint32)
    needed = ctypes.c_uint64(0)
    if n_vertices:
        wrapper.checkError(
            mesh,
            wrapper.lib.lib3mf_meshobject_getvertices(
                mesh._handle, ctypes.c_uint64(n_vertices), needed,
                vertices.ctypes.data_as(ctypes.POINTER(lib3mf.Position)),
            ),
        )
    if n_triangles:
        wrapper.checkError(
            mesh,
            wrapper.lib.lib3mf_meshobject_gettriangleindices(
                mesh._handle, ctypes.c_uint64(n_triangles), needed,
                faces.ctypes.data_as(ctypes.POINTER(lib3mf.Triangle)),
            ),
        )
    return vertices.astype(np.float64), faces.astype(np.int64)


def _matrix(transform: lib3mf.Transform) -> np.ndarray:
    """A 3MF transform (row-vector convention, spec 3.3) as a 4x4 matrix ``M``.

    A point transforms as ``[x y z 1] @ M``; lib3mf's ``Fields[row][col]``
    holds rows 0-2 (the linear part) and row 3 (the translation).
    """
    matrix = np.eye(4)
    for row in range(4):
        for col in range(3):
            matrix[row, col] = transform.Fields[row][col]
    return matrix


def _application(model: lib3mf.Model) -> str | None:
    group = model.GetMetaDataGroup()
    for index in range(group.GetMetaDataCount()):
        entry = group.GetMetaData(index)
        if entry.GetNameSpace() == "" and entry.GetName() == "Application":
            value = entry.GetValue().strip()
            return value or None
    return None


def _message(exc: lib3mf.ELib3MFException) -> str:
    """lib3mf's error as ``"<message> (lib3mf <ERRORNAME>)"``."""
    message = (exc.get_error_message() or "").strip()
    name = exc.get_error_name()
    return f"{message} (lib3mf {name})" if message else f"lib3mf {name}"
