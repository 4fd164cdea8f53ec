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
    """object_count counts resources; geometry counts every placement."""
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
    assert metadata["object_count"] == 2
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
    assert pyramids["object_count"] == 7  # 6 mesh objects + 1 components object; 9 build items


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
