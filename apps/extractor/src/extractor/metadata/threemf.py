"""3MF (3D Manufacturing Format) packages: projects and sliced plate files.

The model XML is read with a streaming expat parser (``xml.parsers.expat``),
not lib3mf, for three reasons found on real files (tests/apps/test_metadata_3mf.py):

* lib3mf loads the whole model into memory (a 200 MB package holds tens of
  millions of vertices): the extractor must stay within 100 MB;
* Cura 4.x binds the 3MF core namespace to a prefix and its own namespace as
  the default; lib3mf then finds "No resources in model file";
* BambuStudio/OrcaSlicer projects put meshes in sub-model parts (3MF
  Production extension, ``p:path`` on components); lib3mf fails some with
  "Build item not found".

So elements are matched by local name whatever namespace (or prefix) they
carry, the Production extension's ``path`` attribute is followed into the
named part (only the parts really referenced are read), and only the current
object's arrays are built while parsing.

Field semantics (docs/metadata.md):

* ``unit``: the model's ``unit`` attribute (3MF Core spec 3.4.1: micron,
  millimeter, centimeter, inch, foot, meter; default millimeter);
* ``object_count``: the ``<item>`` s of the root model's ``<build>`` - the
  objects placed on the plate - not every object of every sub-model (a
  sliced ``.gcode.3mf`` has an empty build: 0);
* geometry (``triangle_count``, ``bbox_mm``, ``surface_area_mm2``,
  ``volume_mm3``) describes the build: every item, components resolved
  recursively with the item and component transforms applied, in mm. Meshes
  are held in memory up to ``MAX_GEOMETRY_TRIANGLES`` triangles in total;
  beyond that ``triangle_count`` is still exact but box, area and volume are
  absent (``geometry_skipped`` says why) - the memory bound wins;
* ``producer``: see ``slicers.producer`` (the plate G-code's generator line,
  Cura's ``version.ini``, or the ``Application`` metadata with the
  BambuStudio/Orca-family rule);
* slicer facts (``slicers``): print time, filament, layers, nozzle, flavor,
  printer model, plate count from the plate G-code(s) ``Metadata/plate_N.gcode``,
  ``Metadata/slice_info.config``, ``Metadata/project_settings.config``
  (BambuStudio family) or Cura's container stack;
* ``leading_bytes``: bytes before the ZIP data, when there are any.
"""

from __future__ import annotations

import logging
import math
import zipfile
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import numpy as np

from . import slicers
from .errors import ExtractionError
from .mesh import placed_mesh_facts
from .package import UTF8_BOM, Package, normalise

log = logging.getLogger(__name__)

#: 3MF unit names -> millimetres per unit (3MF Core spec 3.4.1).
UNITS: dict[str, float] = {
    "micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0,
}
#: OPC relationship type of the 3D model part (3MF Core spec 2.1, table 2-1).
MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
#: Components nesting deeper than this is treated as a cycle.
MAX_COMPONENT_DEPTH = 32
#: Triangles held in memory for the build's geometry (all objects together):
#: 12 bytes per triangle (int32 indices) + ~6 for its vertices while held,
#: and ~25 more while one object's facts are computed (edge keys, placed
#: vertices): the extraction adds ~35 MB at the bound, the process stays
#: (tools/bench_formats.py measures it).
MAX_GEOMETRY_TRIANGLES = 750_000
_READ_CHUNK = 256 * 1024
#: Decompressed XML read per model part at most (decompression-bomb guard:
#: deflate can expand 1000-fold; a real 200 MB package holds well under this).
MAX_MODEL_PART_BYTES = 4 * 1024 * 1024 * 1024


@dataclass
class _Object:
    """One ``<object>``: a mesh (arrays, or only its counts when dropped) or components."""

    id: str
    triangles: int = 0
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    components: list[tuple[str | None, str, np.ndarray]] = field(default_factory=list)
    is_mesh: bool = False


@dataclass
class _Model:
    """One parsed model part."""

    part: str
    unit: str = "millimeter"
    metadata: dict[str, str] = field(default_factory=dict)
    objects: dict[str, _Object] = field(default_factory=dict)
    items: list[tuple[str | None, str, np.ndarray]] = field(default_factory=list)


class _Budget:
    """Triangles still allowed in memory; ``exceeded`` once geometry was dropped."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exceeded = False
        self.held: list[_Object] = []

    def exceed(self) -> None:
        """Drop every mesh held so far: past the bound only counts are kept."""
        self.exceeded = True
        for obj in self.held:
            obj.vertices = obj.faces = None
        self.held.clear()


def extract_3mf(path: Path) -> dict:
    """Metadata of a 3MF package (project or ``.gcode.3mf`` plate file).

    Returns:
        ``{"format": "3mf", "unit", "object_count", ...}`` (module docstring).

    Raises:
        ExtractionError: not a ZIP/OPC package, no 3D model part, malformed
            model XML (also any encoding but UTF-8), build item or component
            referencing a missing object or part, component cycle, non-finite
            coordinates, a plate G-code that is not G-code.
    """
    with Package(path, "3MF") as package:
        rels = package.relationships()
        if not package.has("_rels/.rels"):
            raise ExtractionError(
                f"{path.name!r}: no 3D model part: the package has no _rels/.rels relationships part"
            )
        targets = [target for kind, target in rels if kind == MODEL_RELATIONSHIP]
        if not targets:
            raise ExtractionError(
                f"{path.name!r}: no 3D model part: _rels/.rels has no relationship of type {MODEL_RELATIONSHIP}"
            )
        root_part = targets[0]
        if not package.has(root_part):
            raise ExtractionError(
                f"{path.name!r}: no 3D model part: _rels/.rels names {root_part}, which the package "
                f"does not contain, so the 3MF model cannot be read"
            )
        budget = _Budget(MAX_GEOMETRY_TRIANGLES)
        models: dict[str, _Model] = {}
        root = _parse_model(package, root_part, budget)
        models[normalise(root_part)] = root
        if root.unit not in UNITS:
            raise ExtractionError(
                f"{path.name!r}: the 3MF model cannot be read: unit {root.unit!r} is not a 3MF unit "
                f"({', '.join(UNITS)})"
            )
        out: dict = {"format": "3mf", "unit": root.unit, "object_count": len(root.items)}
        geometry = _geometry(package, root, models, budget)
        out.update(geometry)
        for key, value in slicers.package_facts(package, root.metadata).items():
            out.setdefault(key, value)  # the build's computed geometry wins over a plate G-code's stated top
        if package.leading_bytes:
            out["leading_bytes"] = package.leading_bytes
        return out


# ---- model XML ---------------------------------------------------------------------


def _local(name: str) -> tuple[str, str]:
    """``"uri local"`` (expat with a namespace separator) -> ``(uri, local)``."""
    uri, _, local = name.rpartition(" ")
    return uri, local


def _attr(attrs: dict[str, str], local: str) -> str | None:
    """The attribute with that local name, in no namespace or any namespace."""
    if local in attrs:
        return attrs[local]
    for key, value in attrs.items():
        if key.rpartition(" ")[2] == local:
            return value
    return None


def _matrix(text: str | None, where: str) -> np.ndarray:
    """A 3MF transform (12 numbers, rows of a 4x3 matrix, Core spec 3.3) as 4x4.

    A point transforms as ``[x y z 1] @ M``.
    """
    matrix = np.eye(4)
    if not text or not text.strip():
        return matrix
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != 12 or not all(math.isfinite(v) for v in values):
        raise ExtractionError(f"{where}: transform {text[:80]!r} is not 12 finite numbers")
    matrix[:4, :3] = np.array(values).reshape(4, 3)
    return matrix


def _parse_model(package: Package, part: str, budget: _Budget) -> _Model:
    """Stream one model part through expat (module docstring)."""
    where = f"{package.name!r}: {part.lstrip('/')}"
    model = _Model(part=part)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    # vertex/triangle numbers go into compact arrays (4 bytes each, not Python objects)
    state: dict = {"obj": None, "xs": array("f"), "tris": array("i"), "ntris": 0, "meta": None, "text": [],
                   "depth": 0, "in_build": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        _, tag = _local(name)
        state["depth"] += 1
        if tag == "vertex":
            if budget.exceeded:
                return
            if len(state["xs"]) > 3 * budget.left:
                _drop(state, budget, where)
                return
            try:
                state["xs"].extend((float(attrs["x"]), float(attrs["y"]), float(attrs["z"])))
            except (KeyError, ValueError) as exc:
                raise ExtractionError(f"{where}: the 3MF model cannot be read: bad vertex {attrs} (line {parser.CurrentLineNumber})") from exc
        elif tag == "triangle":
            state["ntris"] += 1
            if budget.exceeded:
                return
            try:
                state["tris"].extend((int(attrs["v1"]), int(attrs["v2"]), int(attrs["v3"])))
            except (KeyError, ValueError, OverflowError) as exc:
                raise ExtractionError(f"{where}: the 3MF model cannot be read: bad triangle {attrs} (line {parser.CurrentLineNumber})") from exc
        elif tag == "object":
            state["obj"] = _Object(id=attrs.get("id") or _attr(attrs, "id") or "")
        elif tag == "mesh" and state["obj"] is not None:
            state["obj"].is_mesh = True
            state["xs"], state["tris"], state["ntris"] = array("f"), array("i"), 0
        elif tag == "component" and state["obj"] is not None:
            state["obj"].components.append(
                (_attr(attrs, "path"), _attr(attrs, "objectid") or "", _matrix(_attr(attrs, "transform"), where))
            )
        elif tag == "build":
            state["in_build"] = True
        elif tag == "item" and state["in_build"]:
            model.items.append(
                (_attr(attrs, "path"), _attr(attrs, "objectid") or "", _matrix(_attr(attrs, "transform"), where))
            )
        elif tag == "model" and state["depth"] == 1:
            model.unit = _attr(attrs, "unit") or "millimeter"
        elif tag == "metadata" and state["depth"] == 2:
            state["meta"] = _attr(attrs, "name")
            state["text"] = []

    def end(name: str) -> None:
        _, tag = _local(name)
        state["depth"] -= 1
        if tag == "mesh" and state["obj"] is not None:
            _finish_mesh(state["obj"], state["xs"], state["tris"], state["ntris"], budget, where)
            state["xs"], state["tris"], state["ntris"] = array("f"), array("i"), 0
        elif tag == "object" and state["obj"] is not None:
            model.objects[state["obj"].id] = state["obj"]
            state["obj"] = None
        elif tag == "build":
            state["in_build"] = False
        elif tag == "metadata" and state["meta"] is not None:
            model.metadata.setdefault(state["meta"], "".join(state["text"]).strip())
            state["meta"] = None

    def text(data: str) -> None:
        if state["meta"] is not None:
            state["text"].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.XmlDeclHandler = lambda version, encoding, standalone: _check_encoding(encoding, where)
    try:
        with package.open(part) as stream:
            first = True
            total = 0
            while True:
                chunk = stream.read(_READ_CHUNK)
                total += len(chunk)
                if total > MAX_MODEL_PART_BYTES:
                    raise ExtractionError(
                        f"{where}: the 3MF model cannot be read: the part decompresses to more than "
                        f"{MAX_MODEL_PART_BYTES} bytes (decompression-bomb guard)"
                    )
                if first:
                    chunk = chunk.removeprefix(UTF8_BOM).lstrip()
                    first = False
                if not chunk:
                    parser.Parse(b"", True)
                    break
                parser.Parse(chunk, False)
    except expat.ExpatError as exc:
        raise ExtractionError(
            f"{where}: the 3MF model cannot be read: not well-formed XML "
            f"({expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset})"
        ) from exc
    except (EOFError, zlib.error, zipfile.BadZipFile) as exc:  # corrupt or cut ZIP member
        raise ExtractionError(f"{where}: the 3MF model cannot be read: {exc}") from exc
    return model


def _check_encoding(encoding: str | None, where: str) -> None:
    # 3MF Core spec 2.2: model parts are UTF-8 (UTF-16 is not allowed either).
    if encoding and encoding.replace("-", "").replace("_", "").lower() != "utf8":
        raise ExtractionError(
            f"{where}: the 3MF model cannot be read: it declares encoding {encoding!r}; 3MF requires UTF-8"
        )


def _drop(state: dict, budget: _Budget, where: str) -> None:
    """Stop holding geometry: the memory bound is reached (counts go on)."""
    if not budget.exceeded:
        log.info("%s: meshes exceed %d triangles; geometry facts skipped", where, MAX_GEOMETRY_TRIANGLES)
        budget.exceed()
    state["xs"], state["tris"] = array("f"), array("i")


def _finish_mesh(obj: _Object, xs: array, tris: array, count: int, budget: _Budget, where: str) -> None:
    obj.triangles = count
    if budget.exceeded or count > budget.left:
        _drop({}, budget, where)
        return
    budget.left -= count
    vertices = np.frombuffer(xs, dtype=np.float32).reshape(-1, 3)
    faces = np.frombuffer(tris, dtype=np.int32).reshape(-1, 3)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ExtractionError(
            f"{where}: the 3MF model cannot be read: object {obj.id} has a triangle index outside its "
            f"{len(vertices)} vertices"
        )
    if not np.isfinite(vertices).all():
        raise ExtractionError(f"{where}: object {obj.id} has a non-finite vertex coordinate")
    obj.vertices, obj.faces = vertices, faces
    budget.held.append(obj)


# ---- build ---------------------------------------------------------------------------


def _geometry(package: Package, root: _Model, models: dict[str, _Model], budget: _Budget) -> dict:
    """Triangle count and (within the memory bound) box, area, volume of the build."""
    scale = UNITS[root.unit]
    placements: list[tuple[_Object, np.ndarray]] = []
    for path, object_id, transform in root.items:
        _resolve(package, root, models, budget, path, object_id, transform, placements, depth=0)
    triangles = sum(obj.triangles for obj, _ in placements)
    if budget.exceeded:
        return {"triangle_count": triangles, "geometry_skipped": (
            f"the meshes hold more than {MAX_GEOMETRY_TRIANGLES} triangles; box, area and volume "
            f"are not computed within the extractor's memory bound")}
    if not placements:
        return {"triangle_count": 0}
    by_object: dict[int, tuple[_Object, list[np.ndarray]]] = {}
    for obj, transform in placements:
        by_object.setdefault(id(obj), (obj, []))[1].append(transform)
    meshes = [(obj.vertices, obj.faces, transforms) for obj, transforms in by_object.values()
              if obj.vertices is not None and obj.faces is not None]
    try:
        return placed_mesh_facts(meshes, scale)
    except ValueError as exc:
        raise ExtractionError(f"{package.name!r}: {exc}") from exc


def _resolve(
    package: Package, model: _Model, models: dict[str, _Model], budget: _Budget,
    path: str | None, object_id: str, transform: np.ndarray,
    placements: list[tuple[_Object, np.ndarray]], depth: int,
) -> None:
    if depth > MAX_COMPONENT_DEPTH:
        raise ExtractionError(f"{package.name!r}: components nest deeper than {MAX_COMPONENT_DEPTH} levels (cycle?)")
    if path:
        key = normalise(path)
        if key not in models:
            if not package.has(path):
                raise ExtractionError(
                    f"{package.name!r}: the 3MF model cannot be read: a component refers to part {path}, "
                    f"which the package does not contain"
                )
            models[key] = _parse_model(package, path, budget)
        model = models[key]
    obj = model.objects.get(object_id)
    if obj is None:
        raise ExtractionError(
            f"{package.name!r}: the 3MF model cannot be read: object {object_id!r} is referenced but "
            f"{model.part.lstrip('/')} does not define it"
        )
    if obj.is_mesh:
        placements.append((obj, transform))
    for sub_path, sub_id, local in obj.components:
        _resolve(package, model, models, budget, sub_path, sub_id, local @ transform, placements, depth + 1)
