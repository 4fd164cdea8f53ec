"""3MF: units, objects vs build items, components and transforms, package faults."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from extractor.metadata import ExtractionError, extract_metadata
from manifest import SAMPLES

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>"
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)
THUMBNAIL_ONLY_RELS = RELS.replace(
    "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel",
    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail",
)
CUBE_VERTICES = [(x, y, z) for z in (0, 1) for y in (0, 1) for x in (0, 1)]
CUBE_TRIANGLES = [
    (0, 2, 1), (1, 2, 3), (4, 5, 6), (5, 7, 6), (0, 1, 4), (1, 5, 4),
    (2, 6, 3), (3, 6, 7), (0, 4, 2), (2, 4, 6), (1, 3, 5), (3, 7, 5),
]


def cube_object(object_id: int, open_mesh: bool = False) -> str:
    vertices = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in CUBE_VERTICES)
    triangles = CUBE_TRIANGLES[:-1] if open_mesh else CUBE_TRIANGLES
    tris = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in triangles)
    return f'<object id="{object_id}" type="model"><mesh><vertices>{vertices}</vertices><triangles>{tris}</triangles></mesh></object>'


def model(resources: str, build: str, unit: str = "millimeter", metadata: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="{unit}" xml:lang="en-US" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        f"{metadata}<resources>{resources}</resources><build>{build}</build></model>"
    )


def package(model_xml: str | None, rels: str | None = RELS) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        if rels is not None:
            zf.writestr("_rels/.rels", rels)
        if model_xml is not None:
            zf.writestr("3D/3dmodel.model", model_xml)
    return buffer.getvalue()


def _extract(tmp_path: Path, data: bytes, name: str = "part.3mf") -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    return extract_metadata(path, name)


def test_single_cube_millimetres(tmp_path: Path) -> None:
    data = package(model(cube_object(1), '<item objectid="1"/>'))
    assert _extract(tmp_path, data) == {
        "format": "3mf",
        "bbox_mm": {"min": [0.0, 0.0, 0.0], "max": [1.0, 1.0, 1.0]},
        "triangle_count": 12,
        "object_count": 1,
        "unit": "millimeter",
        "volume_mm3": 1.0,
        "surface_area_mm2": 6.0,
    }


@pytest.mark.parametrize(
    ("unit", "mm"),
    [("micron", 0.001), ("millimeter", 1.0), ("centimeter", 10.0), ("inch", 25.4), ("foot", 304.8), ("meter", 1000.0)],
)
def test_units_are_converted_to_mm(tmp_path: Path, unit: str, mm: float) -> None:
    metadata = _extract(tmp_path, package(model(cube_object(1), '<item objectid="1"/>', unit=unit)))
    assert metadata["unit"] == unit
    assert metadata["bbox_mm"]["max"] == pytest.approx([mm, mm, mm])
    assert metadata["volume_mm3"] == pytest.approx(mm**3)
    assert metadata["surface_area_mm2"] == pytest.approx(6 * mm**2)


def test_components_and_build_items(tmp_path: Path) -> None:
    """object_count counts build items (objects on the plate); geometry counts every placement."""
    resources = (
        cube_object(1)
        + '<object id="2" type="model"><components>'
        '<component objectid="1" transform="1 0 0 0 1 0 0 0 1 10 0 0"/>'
        '<component objectid="1" transform="2 0 0 0 2 0 0 0 2 20 0 0"/>'
        "</components></object>"
    )
    build = '<item objectid="1"/><item objectid="1" transform="1 0 0 0 1 0 0 0 1 0 5 0"/>' \
            '<item objectid="2" transform="1 0 0 0 1 0 0 0 1 0 0 3"/>'
    metadata = _extract(tmp_path, package(model(resources, build)))
    assert metadata["object_count"] == 3
    assert metadata["triangle_count"] == 4 * 12  # two direct cubes + two via the components object
    assert metadata["volume_mm3"] == pytest.approx(1 + 1 + 1 + 8)
    assert metadata["surface_area_mm2"] == pytest.approx(6 + 6 + 6 + 24)
    assert metadata["bbox_mm"] == {"min": [0.0, 0.0, 0.0], "max": [22.0, 6.0, 5.0]}


def test_mirroring_transform_keeps_volume_positive(tmp_path: Path) -> None:
    build = '<item objectid="1" transform="-1 0 0 0 1 0 0 0 1 0 0 0"/>'
    metadata = _extract(tmp_path, package(model(cube_object(1), build)))
    assert metadata["volume_mm3"] == pytest.approx(1.0)
    assert metadata["bbox_mm"]["min"] == [-1.0, 0.0, 0.0]


def test_open_mesh_states_no_volume(tmp_path: Path) -> None:
    metadata = _extract(tmp_path, package(model(cube_object(1, open_mesh=True), '<item objectid="1"/>')))
    assert metadata["triangle_count"] == 11
    assert "volume_mm3" not in metadata


def test_application_metadata_is_the_producer(tmp_path: Path) -> None:
    meta = '<metadata name="Application">PrusaSlicer-2.6.0+win64</metadata><metadata name="Title">x</metadata>'
    metadata = _extract(tmp_path, package(model(cube_object(1), '<item objectid="1"/>', metadata=meta)))
    assert metadata["producer"] == {"name": "PrusaSlicer", "version": "2.6.0+win64"}


def test_samples() -> None:
    box = extract_metadata(SAMPLES / "3mf" / "box.3mf", "box.3mf")
    assert box["bbox_mm"] == {"min": [0.0, 0.0, 0.0], "max": [10.0, 20.0, 30.0]}  # "10x20x30 box"
    assert box["volume_mm3"] == pytest.approx(6000.0)
    inch = extract_metadata(SAMPLES / "3mf" / "featuretype.3MF", "featuretype.3MF")
    assert inch["unit"] == "inch" and inch["triangle_count"] == 2208
    assert inch["bbox_mm"]["max"] == pytest.approx([63.5, 31.75, 34.925])  # 2.5 x 1.25 x 1.375 in
    assert "volume_mm3" not in inch  # its mesh has 18 boundary edges: not closed
    pyramids = extract_metadata(SAMPLES / "3mf" / "pyramids.3mf", "pyramids.3mf")
    assert pyramids["object_count"] == 9  # 9 build items (7 objects: 6 meshes + 1 components object)


def _reference_build(path: Path) -> tuple[int, np.ndarray, np.ndarray]:
    """Triangles and box of a 3MF build, computed independently with ElementTree.

    Core spec 3.3: a point transforms as ``[x y z 1] @ M`` with the 12
    ``transform`` numbers as the rows of ``M``; a component's transform
    applies before its parent's.
    """
    ns = {"m": "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"}
    with zipfile.ZipFile(path) as package:
        root = ElementTree.fromstring(package.read("3D/3dmodel.model"))
    objects = {o.get("id"): o for o in root.find("m:resources", ns).findall("m:object", ns)}

    def matrix(text: str | None) -> np.ndarray:
        m = np.eye(4)
        if text:
            m[:4, :3] = np.array([float(v) for v in text.split()]).reshape(4, 3)
        return m

    points, triangles = [], 0

    def collect(obj: ElementTree.Element, transform: np.ndarray) -> None:
        nonlocal triangles
        mesh = obj.find("m:mesh", ns)
        if mesh is not None:
            vertices = np.array([[float(v.get(a)) for a in "xyz"] for v in mesh.find("m:vertices", ns)])
            triangles += len(mesh.find("m:triangles", ns))
            points.append(vertices @ transform[:3, :3] + transform[3, :3])
        for component in obj.findall("m:components/m:component", ns):
            collect(objects[component.get("objectid")], matrix(component.get("transform")) @ transform)

    for item in root.find("m:build", ns):
        collect(objects[item.get("objectid")], matrix(item.get("transform")))
    stacked = np.vstack(points)
    return triangles, stacked.min(axis=0), stacked.max(axis=0)


def test_pyramids_build_matches_an_independent_reading() -> None:
    path = SAMPLES / "3mf" / "pyramids.3mf"
    metadata = extract_metadata(path, path.name)
    triangles, low, high = _reference_build(path)
    assert metadata["triangle_count"] == triangles
    assert metadata["bbox_mm"]["min"] == pytest.approx(low.tolist(), abs=1e-4)
    assert metadata["bbox_mm"]["max"] == pytest.approx(high.tolist(), abs=1e-4)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", r"empty \(0 bytes\)"),
        (b"solid not a zip\n", "not a ZIP archive"),
        (package(model(cube_object(1), '<item objectid="1"/>'), rels=None), "no _rels/.rels"),
        (package(model(cube_object(1), '<item objectid="1"/>'), rels=THUMBNAIL_ONLY_RELS), "no 3D model part"),
        (package(model(cube_object(1), '<item objectid="1"/>'), rels="<Relationships"), "not well-formed XML"),
        (package("<model unit='millimeter'><resources><object"), "cannot be read"),
        (package(model(cube_object(1), '<item objectid="7"/>')), "cannot be read"),
        (package(None), "cannot be read"),
    ],
    ids=["empty", "not-zip", "no-rels", "no-model-relationship", "bad-rels-xml", "bad-model-xml",
         "item-without-object", "model-part-missing"],
)
def test_bad_packages_fail_with_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(ExtractionError, match=reason) as info:
        _extract(tmp_path, data)
    assert "part.3mf" in info.value.reason


def test_prefixed_core_namespace_is_read(tmp_path: Path) -> None:
    """Cura 4.x: the core namespace under a prefix, Cura's namespace as the default."""
    xml = model(cube_object(1), '<item objectid="1"/>').replace(
        'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"',
        'xmlns="http://software.ultimaker.com/xml/cura/3mf/2015/10" '
        'xmlns:cura="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"',
    )
    metadata = _extract(tmp_path, package(xml))
    assert metadata["triangle_count"] == 12 and metadata["volume_mm3"] == pytest.approx(1.0)


def test_production_extension_sub_models(tmp_path: Path) -> None:
    """Bambu/Orca: meshes in 3D/Objects/*.model reached by p:path; object_count is the build."""
    production = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
    root = model(
        '<object id="9" type="model"><components>'
        '<component p:path="/3D/Objects/object_1.model" objectid="1"/>'
        '<component p:path="/3D/Objects/object_1.model" objectid="2" transform="1 0 0 0 1 0 0 0 1 5 0 0"/>'
        '</components></object>',
        '<item objectid="9"/>',
    ).replace("<model ", f'<model xmlns:p="{production}" requiredextensions="p" ', 1)
    sub = model(cube_object(1) + cube_object(2), "")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("3D/3dmodel.model", root)
        zf.writestr("3D/Objects/object_1.model", sub)
        zf.writestr("3D/Objects/unused_stub.model", model("", ""))
    metadata = _extract(tmp_path, buffer.getvalue())
    assert metadata["object_count"] == 1
    assert metadata["triangle_count"] == 24
    assert metadata["bbox_mm"] == {"min": [0.0, 0.0, 0.0], "max": [6.0, 1.0, 1.0]}


def test_leading_bytes_and_boms_are_tolerated(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", bom + RELS.encode())
        zf.writestr("3D/3dmodel.model", bom + model(cube_object(1), '<item objectid="1"/>', unit="centimeter").encode())
    prefix = b"[slicer log] exported plate 1\n" * 10
    metadata = _extract(tmp_path, prefix + buffer.getvalue())
    assert metadata["leading_bytes"] == len(prefix)
    assert metadata["unit"] == "centimeter" and metadata["volume_mm3"] == pytest.approx(1000.0)


def test_geometry_beyond_the_memory_bound_is_counted_not_measured(tmp_path: Path, monkeypatch) -> None:
    from extractor.metadata import threemf

    monkeypatch.setattr(threemf, "MAX_GEOMETRY_TRIANGLES", 20)
    build = '<item objectid="1"/><item objectid="2"/>'
    metadata = _extract(tmp_path, package(model(cube_object(1) + cube_object(2), build)))
    assert metadata["triangle_count"] == 24
    assert "bbox_mm" not in metadata and "volume_mm3" not in metadata
    assert "memory bound" in metadata["geometry_skipped"]


MORE = SAMPLES.parent / "more-samples"


@pytest.mark.parametrize(
    ("path", "producer", "objects", "thumbnail_source"),
    [
        ("3mf/orca_cases_orcaslicer.3mf", {"name": "OrcaSlicer", "version": "2.3.0"}, 19, "Metadata/plate_1.png"),
        ("3mf/elegoo_cases_centauri_carbon.3mf", {"name": "ElegooSlicer", "version": "1.1.8.2"}, 20,
         "Metadata/plate_1.png"),
        ("3mf/bambu_multicolor-test-coin.3mf", {"name": "BambuStudio", "version": "01.10.01.50"}, 1,
         "Metadata/plate_1.png"),
        ("3mf/cura461_UM3E_Spacer_V2.3mf", {"name": "Cura", "version": "4.6.1"}, 1, None),
        ("3mf/cura521_UMS5_frame.3mf", {"name": "Cura", "version": "5.2.1"}, 1, "Metadata/thumbnail.png"),
        ("bambustudio/bambu_reference_e2e_p1s.gcode.3mf", {"name": "BambuStudio", "version": "02.05.00.66"}, 0,
         "Metadata/plate_1.png"),
    ],
)
def test_slicer_projects(path: str, producer: dict, objects: int, thumbnail_source: str | None) -> None:
    metadata = extract_metadata(MORE / path, Path(path).name)
    assert metadata["producer"] == producer
    assert metadata["object_count"] == objects
    assert metadata.get("thumbnail", {}).get("source") == thumbnail_source


def test_plate_file_facts() -> None:
    metadata = extract_metadata(MORE / "bambustudio" / "bambu_reference_e2e_p1s.gcode.3mf", "p.gcode.3mf")
    assert metadata["print_time_s"] == 7745.0  # "total estimated time: 2h 9m 5s"
    assert metadata["filament_used_mm_per_extruder"] == [7854.52, 2915.81]
    assert metadata["filament_used_g_per_extruder"] == [23.43, 8.7]
    assert metadata["layer_count"] == 100 and metadata["plate_count"] == 1
    assert metadata["printer_model"] == "Bambu Lab P1S" and metadata["nozzle_diameter_mm"] == 0.4


def _lib3mf_build(path: Path) -> tuple[int, np.ndarray, np.ndarray]:
    """Triangles and box of the build as lib3mf (the 3MF Consortium's reader) sees them."""
    import lib3mf

    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.QueryReader("3mf").ReadFromFile(str(path))
    scale = {lib3mf.ModelUnit.MicroMeter: 0.001, lib3mf.ModelUnit.MilliMeter: 1.0, lib3mf.ModelUnit.CentiMeter: 10.0,
             lib3mf.ModelUnit.Inch: 25.4, lib3mf.ModelUnit.Foot: 304.8, lib3mf.ModelUnit.Meter: 1000.0}[model.GetUnit()]

    def matrix(transform) -> np.ndarray:
        m = np.eye(4)
        for row in range(4):
            for col in range(3):
                m[row, col] = transform.Fields[row][col]
        return m

    points, triangles = [], 0

    def collect(resource, transform: np.ndarray) -> None:
        nonlocal triangles
        if resource.IsMeshObject():
            vertices = np.array([[v.Coordinates[i] for i in range(3)] for v in resource.GetVertices()])
            triangles += resource.GetTriangleCount()
            points.append(vertices @ transform[:3, :3] + transform[3, :3])
        elif resource.IsComponentsObject():
            for index in range(resource.GetComponentCount()):
                component = resource.GetComponent(index)
                local = matrix(component.GetTransform()) if component.HasTransform() else np.eye(4)
                collect(component.GetObjectResource(), local @ transform)

    items = model.GetBuildItems()
    while items.MoveNext():
        item = items.GetCurrent()
        collect(item.GetObjectResource(), matrix(item.GetObjectTransform()) if item.HasObjectTransform() else np.eye(4))
    stacked = np.vstack(points) * scale
    return triangles, stacked.min(axis=0), stacked.max(axis=0)


@pytest.mark.parametrize("path", [
    SAMPLES / "3mf" / "box.3mf", SAMPLES / "3mf" / "featuretype.3MF", SAMPLES / "3mf" / "pyramids.3mf",
    MORE / "3mf" / "3mf_unit_inch_holed_cube.3mf", MORE / "3mf" / "cura521_UMS5_frame.3mf",
    MORE / "3mf" / "cura4299dev_POS.3mf", MORE / "3mf" / "bambu_multicolor-test-coin.3mf",
], ids=lambda p: p.name)
def test_streaming_reader_agrees_with_lib3mf(path: Path) -> None:
    """Where lib3mf reads a sample, the streaming reader finds the same build (count and box)."""
    triangles, low, high = _lib3mf_build(path)
    metadata = extract_metadata(path, path.name)
    assert metadata["triangle_count"] == triangles
    assert metadata["bbox_mm"]["min"] == pytest.approx(low.tolist(), abs=1e-3)
    assert metadata["bbox_mm"]["max"] == pytest.approx(high.tolist(), abs=1e-3)


def test_lib3mf_rejects_what_real_writers_produce() -> None:
    """Why the extractor does not use lib3mf: Cura 4.x's prefixed core namespace (the reader above is fine)."""
    import lib3mf

    with pytest.raises(lib3mf.ELib3MFException):
        _lib3mf_build(MORE / "3mf" / "cura461_UM3E_Spacer_V2.3mf")
    assert extract_metadata(MORE / "3mf" / "cura461_UM3E_Spacer_V2.3mf", "x.3mf")["triangle_count"] == 1884


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:
    from extractor.metadata import threemf

    monkeypatch.setattr(threemf, "MAX_MODEL_PART_BYTES", 10_000)
    padding = "<!--" + " " * 50_000 + "-->"
    data = package(model(cube_object(1), '<item objectid="1"/>').replace("<resources>", padding + "<resources>"))
    with pytest.raises(ExtractionError, match="decompression-bomb guard"):
        _extract(tmp_path, data)
