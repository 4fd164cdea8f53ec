"""Reader of ``../shared/samples/MANIFEST.tsv`` and ``../shared/more-samples/MANIFEST.tsv``:
what each sample states, as metadata fields.

The manifest's cells hold values *as written* with provenance in
parentheses (``0.2 (;Layer height: 0.2)``), sums (``72 + 58``), per-tool
lists (``0.4,0.4,0.4,0.4,0.4``) and prose (``z only: ; max_z_height: 5.00``).
This module turns every cell into the metadata value it implies, by the
explicit rules below. A cell that matches no rule raises ``UnmappedCell``:
the corpus test then fails naming the file and column - nothing is silently
skipped. Cells are TSV with CSV quoting (``"..."`` with ``""`` for a quote),
which the second manifest uses for cells holding quotes or tabs.

Rows are keyed ``<tree>/<path>`` (``samples/cura/Kreistest.gcode``,
``more-samples/ufp/cura_2ext.ufp``): the two trees use the same folders.

Column -> field (``COLUMNS``; "provenance" columns are not facts):

=====================  ======================  ===========================================
column                 field                   cell rule
=====================  ======================  ===========================================
producer               producer {name,version} ``Name Version (note)`` / ``Name Version, note``;
                                               the version may be ``master`` (Cura dev
                                               builds); a note ``really Name Version``
                                               (OrcaSlicer family writing
                                               ``Application=BambuStudio-...``) wins;
                                               ``none (...)`` / ``not stated ...`` -> absent;
                                               "no version string" -> version absent,
                                               ``Legacy Cura 15.x`` -> name ``Cura``;
                                               STL rows: the cell quotes the free-text
                                               header / solid name, STL has no producer
                                               field -> absent
print_time_s           print_time_s            integer seconds
filament_as_written    filament_used_mm,       segments split on `` ; ``, each read by
                       filament_used_g,        ``_FILAMENT_SEGMENTS`` (``8.36128m`` ->
                       filament_used_mm3,      8361.28 mm; per-tool lists summed, and
                       ..._per_extruder        kept as ``*_per_extruder`` when 2+ values;
                                               ``total ... [g]`` preferred; volumes in
                                               mm3 / cm3 -> mm^3 (Griffin VOLUME_USED,
                                               Cura ``mm3``, ``[cm3]``, ``(29.7cm3)``);
                                               BambuStudio's ``[cm^3]`` ignored (it holds
                                               the mm^3 value); slice_info.config
                                               ``weight`` / ``<filament used_m used_g>``)
layer_height           layer_height_mm         leading number; "no global layer-height
                                               key" -> absent (per-layer heights only)
layer_count            layer_count             leading integer; ``A + B`` -> A + B (one
                                               ``;Layer count`` per object of a
                                               sequential print = total layers);
                                               an empty cell whose layer_count_origin is
                                               ``not stated; N '<marker>' ...`` -> N
                                               (the producer's layer markers counted,
                                               as for rows whose cell holds the count)
nozzle_diameter        nozzle_diameter_mm      leading number or per-extruder list: all
                                               equal -> that value, else absent;
                                               "interpretation, not labelled" -> absent;
                                               a Cura variant *name* ("AA 0.4", note
                                               ``(variant ...``) -> absent: no value
flavor                 flavor                  leading word, or the value of a quoted
                                               ``;Key: value`` line; case-insensitive
bbox_min, bbox_max     bbox_mm                 ``x,y,z (note)``; ``z only: ; key: z`` ->
                                               ``[None, None, z]``; one empty side ->
                                               all ``None``. G-code rows only: mesh rows
                                               leave the columns empty because the box
                                               is computed, not written (see
                                               test_metadata_stl/3mf for geometry)
stl_triangle_count     triangle_count          leading integer (STL rows only: the
                                               column is STL-specific)
3mf_object_count       object_count            leading integer
3mf_unit               unit                    the word as written
=====================  ======================  ===========================================

Empty cells: the file does not state the fact (README), so the field must be
absent - except where ``OVERRIDES`` documents that the file states more than
the manifest recorded.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT.parent / "shared" / "samples"
MANIFEST = SAMPLES / "MANIFEST.tsv"
MORE_SAMPLES = REPO_ROOT.parent / "shared" / "more-samples"
#: The sample trees, by the name that prefixes their row keys.
TREES: dict[str, Path] = {"samples": SAMPLES, "more-samples": MORE_SAMPLES}

#: The manifest's header, exactly; a new or renamed column must be mapped here first.
COLUMNS = (
    "path", "kind", "producer", "source_repo", "source_path", "commit", "license", "size_bytes",
    "print_time_as_written", "print_time_s", "print_time_s_origin", "filament_as_written",
    "layer_height", "layer_count", "layer_count_origin", "nozzle_diameter", "flavor",
    "bbox_min", "bbox_max", "stl_triangle_count", "stl_count_origin", "3mf_object_count",
    "3mf_unit", "how_obtained", "notes", "git_blob_sha1",
)
#: Columns that describe where a value came from, not a fact of the file.
PROVENANCE = frozenset({
    "source_repo", "source_path", "commit", "license", "print_time_as_written",
    "print_time_s_origin", "layer_count_origin", "stl_count_origin", "how_obtained", "notes",
})

#: Fields compared for every row (absent when the cell is empty).
GCODE_FIELDS = (
    "producer", "print_time_s", "filament_used_mm", "filament_used_g", "filament_used_mm3",
    "filament_used_mm_per_extruder", "filament_used_g_per_extruder", "filament_used_mm3_per_extruder",
    "layer_height_mm", "layer_count", "nozzle_diameter_mm", "flavor", "bbox_mm",
)
MESH_FIELDS = ("triangle_count", "object_count", "unit")

#: Files that must fail, and a phrase their reason must contain (documented decisions).
EXPECTED_FAILURES: dict[str, str] = {
    "samples/broken/benchy_git_lfs_pointer.gcode": "Git LFS pointer",
    "samples/broken/fdn_all_empty.gcode": "empty (0 bytes)",
    "samples/broken/MUSTFAIL_NonExist3DModelPart.3mf": "no 3D model part",
    "samples/broken/MUSTFAIL_NonUTF_Encoding.3mf": "cannot be read",
    # decision: a malformed facet (normal "+inf -inf weirdvalue", "endloop foo")
    # fails instead of being guessed; see docs/metadata.md
    "samples/broken/20mmbox-nonstandard.stl": "malformed ASCII STL",
}

_CM3_NOT_COPIED = (
    "the file also states 'filament used [cm3]' (PrusaSlicer/Orca summary, or the bgcode "
    "PrintMetadata block); the manifest copied only the mm and g lines"
)
_TOP_Z = (
    "the file states max_layer_z (quoted in the notes column): the top of the print, read like "
    "BambuStudio's max_z_height; the manifest leaves the bbox columns empty"
)
_LAYERS_COUNTED = (
    "binary metadata states no layer count; the GCode blocks (heatshrink, MeatPack) are decoded "
    "and the producer's ;LAYER_CHANGE lines counted, as for text G-code (max_layer_z / layer_height agrees)"
)

#: (path, field) -> (expected value, why it differs from the manifest cell).
OVERRIDES: dict[tuple[str, str], tuple[Any, str]] = {
    ("samples/prusaslicer/prusa_slicer.bgcode", "flavor"): (
        "marlin2",
        "stated as gcode_flavor=marlin2 in the deflate-compressed SlicerMetadata block; "
        "the manifest read only the uncompressed blocks ('strings')",
    ),
    ("samples/prusaslicer/prusa_slicer.bgcode", "bbox_mm"): (
        {"min": [None, None, None], "max": [None, None, 5.0]},
        "PrinterMetadata states max_layer_z=5.00 (quoted in the notes column): the top of "
        "the print, read like BambuStudio's max_z_height",
    ),
    ("samples/prusaslicer/prusa_slicer.bgcode", "layer_count"): (25, _LAYERS_COUNTED),
    ("more-samples/prusaslicer/mini_cube_ps2.8.1.bgcode", "bbox_mm"): (
        {"min": [None, None, None], "max": [None, None, 6.2]}, _TOP_Z),
    ("more-samples/prusaslicer/test_binary_heatshrink.bgcode", "bbox_mm"): (
        {"min": [None, None, None], "max": [None, None, 46.2]}, _TOP_Z),
    ("more-samples/prusaslicer/prusaslicer260_box_thumbnails.gcode", "bbox_mm"): (
        {"min": [None, None, None], "max": [None, None, 25.0]}, _TOP_Z),
    ("more-samples/prusaslicer/mini_cube_ps2.8.1.bgcode", "layer_count"): (31, _LAYERS_COUNTED),
    ("more-samples/prusaslicer/test_binary_heatshrink.bgcode", "layer_count"): (185, _LAYERS_COUNTED),
    ("more-samples/prusaslicer/mini_cube_ps2.8.1.bgcode", "filament_used_mm3"): (610.0, _CM3_NOT_COPIED),
    ("more-samples/prusaslicer/test_binary_heatshrink.bgcode", "filament_used_mm3"): (9790.0, _CM3_NOT_COPIED),
    ("more-samples/prusaslicer/test_binary_heatshrink.bgcode", "filament_used_mm3_per_extruder"): (
        [9790.0, 0.0, 0.0, 0.0, 0.0], _CM3_NOT_COPIED),
    ("more-samples/prusaslicer/prusaslicer260_box_thumbnails.gcode", "filament_used_mm3"): (5140.0, _CM3_NOT_COPIED),
    ("samples/prusaslicer/full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode", "filament_used_mm3"): (
        1200.0, _CM3_NOT_COPIED),
    ("samples/prusaslicer/full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode", "filament_used_mm3_per_extruder"): (
        [960.0, 0.0, 240.0], _CM3_NOT_COPIED),
    ("samples/orcaslicer/orca_slicer.gcode", "filament_used_mm3"): (77220.0, _CM3_NOT_COPIED),
    ("samples/orcaslicer/orca_slicer.gcode", "filament_used_mm3_per_extruder"): ([0.0, 77220.0], _CM3_NOT_COPIED),
    ("samples/3mf/pyramids.3mf", "object_count"): (
        9, "object_count is the number of build items (objects placed on the plate, issue 12): "
           "9 items place the 7 objects the cell counts"),
}
#: Rows whose content is byte-identical to another row's file once decompressed
#: (the notes say so; the corpus test verifies it): expected facts are that row's.
SAME_CONTENT_AS: dict[str, str] = {
    "samples/broken/um3.gcode.gz": "samples/cura_griffin/um3.gcode",
}

#: Samples that embed a preview image, and where the stored thumbnail comes from
#: (the largest G-code/bgcode thumbnail; a 3MF's plate image; a UFP's thumbnail part).
THUMBNAILS: dict[str, str] = {
    "samples/bambustudio/bambu_lab.gcode": "bambu_lab.gcode line 393",
    "samples/orcaslicer/orca_slicer.gcode": "orca_slicer.gcode line 37",
    "samples/prusaslicer/full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode":
        "full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode line 5",
    "samples/prusaslicer/prusa_slicer.bgcode": "Thumbnail block at byte 143911",
    "more-samples/prusaslicer/mini_cube_ps2.8.1.bgcode": "Thumbnail block at byte 996",
    "more-samples/prusaslicer/test_binary_heatshrink.bgcode": "Thumbnail block at byte 27239",
    "more-samples/prusaslicer/prusaslicer260_box_thumbnails.gcode": "prusaslicer260_box_thumbnails.gcode line 327",
    "more-samples/3mf/bambu_multicolor-test-coin.3mf": "Metadata/plate_1.png",
    "more-samples/3mf/orca_cases_orcaslicer.3mf": "Metadata/plate_1.png",
    "more-samples/3mf/elegoo_cases_centauri_carbon.3mf": "Metadata/plate_1.png",
    "more-samples/3mf/cura521_UMS5_frame.3mf": "Metadata/thumbnail.png",
    "more-samples/bambustudio/bambu_decoy_base.gcode.3mf": "Metadata/plate_1.png",
    "more-samples/bambustudio/bambu_reference_e2e_p1s.gcode.3mf": "Metadata/plate_1.png",
    "more-samples/ufp/cura_2ext.ufp": "Metadata/thumbnail.png",
    "more-samples/ufp/cura_griffin2.ufp": "Metadata/thumbnail.png",
}

ABSENT = object()  # sentinel: the field must not be in the metadata


class UnmappedCell(ValueError):
    """A manifest cell that no rule maps to a field value."""


@dataclass
class Row:
    """One manifest row: its raw cells and the expected metadata fields."""

    cells: dict[str, str]
    expected: dict[str, Any] = field(default_factory=dict)  # field -> value or ABSENT
    errors: dict[str, str] = field(default_factory=dict)  # field -> why unmapped
    tree: str = "samples"

    @property
    def path(self) -> str:
        """The row key: ``<tree>/<path in the tree>``."""
        return f"{self.tree}/{self.cells['path']}"

    @property
    def file(self) -> Path:
        return TREES[self.tree] / self.cells["path"]


def read_all() -> list[Row]:
    """The rows of every tree whose MANIFEST.tsv exists, with overrides applied."""
    rows: list[Row] = []
    for tree, root in TREES.items():
        if (root / "MANIFEST.tsv").is_file():
            rows += read_manifest(root / "MANIFEST.tsv", tree=tree)
    return rows


def read_manifest(path: Path = MANIFEST, tree: str = "samples") -> list[Row]:
    """All rows of one manifest, with ``expected`` filled by the column rules (see module doc).

    Raises:
        ValueError: the header is not ``COLUMNS`` or a row has the wrong width.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = tuple(next(reader))
        if header != COLUMNS:
            raise ValueError(f"{path}: columns changed: {header} != {COLUMNS}")
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not any(cells):
                continue
            if len(cells) != len(COLUMNS):
                raise ValueError(f"{path}:{number}: {len(cells)} cells, expected {len(COLUMNS)}")
            rows.append(_expect(Row(dict(zip(COLUMNS, cells, strict=True)), tree=tree)))
    by_path = {row.path: row for row in rows}
    for path_, source in SAME_CONTENT_AS.items():
        if path_ in by_path and source in by_path:
            by_path[path_].expected = dict(by_path[source].expected)
            by_path[path_].errors = dict(by_path[source].errors)
    for (path_, name), (value, _why) in OVERRIDES.items():
        if path_ in by_path:
            by_path[path_].expected[name] = value
            by_path[path_].errors.pop(name, None)
    return rows


def _expect(row: Row) -> Row:
    c = row.cells
    mesh = c["kind"] in ("stl", "3mf") or row.path.lower().endswith((".stl", ".3mf"))
    rules = {
        "producer": lambda: _producer(c["producer"], stl=row.path.lower().endswith(".stl")),
        "print_time_s": lambda: _leading_number(c["print_time_s"]),
        "filament_used_mm": lambda: _filament(c["filament_as_written"])["mm"],
        "filament_used_g": lambda: _filament(c["filament_as_written"])["g"],
        "filament_used_mm3": lambda: _filament(c["filament_as_written"])["mm3"],
        "filament_used_mm_per_extruder": lambda: _filament(c["filament_as_written"])["mm_tools"],
        "filament_used_g_per_extruder": lambda: _filament(c["filament_as_written"])["g_tools"],
        "filament_used_mm3_per_extruder": lambda: _filament(c["filament_as_written"])["mm3_tools"],
        "layer_height_mm": lambda: _layer_height(c["layer_height"]),
        "layer_count": lambda: _layer_count(c["layer_count"] or c["layer_count_origin"]),
        "nozzle_diameter_mm": lambda: _nozzle(c["nozzle_diameter"]),
        "flavor": lambda: _flavor(c["flavor"]),
        "object_count": lambda: _leading_int(c["3mf_object_count"]),
        "unit": lambda: c["3mf_unit"].strip() or ABSENT,
    }
    if not mesh:
        rules["bbox_mm"] = lambda: _bbox(c["bbox_min"], c["bbox_max"])
        rules["triangle_count"] = lambda: _leading_int(c["stl_triangle_count"])
    elif row.path.lower().endswith(".stl"):
        rules["triangle_count"] = lambda: _leading_int(c["stl_triangle_count"])
    for name, rule in rules.items():
        try:
            row.expected[name] = rule()
        except UnmappedCell as exc:
            row.errors[name] = str(exc)
    return row


# ---- cell rules ------------------------------------------------------------------

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)"


def _leading_number(cell: str) -> Any:
    cell = cell.strip()
    if not cell:
        return ABSENT
    match = re.match(rf"({_NUM})(?:\s*\(.*\))?$", cell)
    if not match:
        raise UnmappedCell(f"not a number with an optional (note): {cell!r}")
    return float(match.group(1))


def _leading_int(cell: str) -> Any:
    cell = cell.strip()
    if not cell:
        return ABSENT
    match = re.match(r"(\d+)(?:\s+\(.*\)|\s+found by grep.*)?$", cell)
    if not match:
        raise UnmappedCell(f"not an integer with an optional (note): {cell!r}")
    return int(match.group(1))


def _layer_count(cell: str) -> Any:
    cell = cell.strip()
    match = re.fullmatch(r"(\d+)(?:\s*\+\s*(\d+))+", cell)
    if match:
        # "72 + 58": a sequential print states one count per object -> total layers
        return sum(int(n) for n in re.findall(r"\d+", cell))
    counted = re.fullmatch(r"not stated; (\d+) '[^']+' (?:markers counted|lines|comments)\b.*", cell)
    if counted:
        # the producer's own layer-change markers, counted (the extractor does the same)
        return int(counted.group(1))
    return _leading_int(cell)


def _layer_height(cell: str) -> Any:
    if "no global layer-height key" in cell:
        return ABSENT  # only per-layer ;HEIGHT: values: not a global layer height
    match = re.match(rf"\s*({_NUM})(?:\s*\(.*|\s*$)", cell)
    if match:
        return float(match.group(1))
    return _leading_number(cell)


def _nozzle(cell: str) -> Any:
    if "interpretation, not labelled" in cell:
        return ABSENT  # an unlabelled field is not a stated nozzle diameter
    if re.search(r"\(variant\b", cell):
        return ABSENT  # Cura: the nozzle variant's *name* ("AA 0.4"); no diameter value is written
    cell = re.sub(r"\s*\(.*\)\s*$", "", cell.strip())
    if not cell:
        return ABSENT
    parts = [p for p in re.split(r"[,\s]+", cell) if p]
    if not all(re.fullmatch(_NUM, p) for p in parts):
        raise UnmappedCell(f"nozzle cell is not a number list: {cell!r}")
    values = [float(p) for p in parts]
    return values[0] if all(v == values[0] for v in values) else ABSENT


def _flavor(cell: str) -> Any:
    cell = cell.strip()
    if not cell:
        return ABSENT
    quoted = re.fullmatch(r";\s*[A-Za-z_ ]+:\s*(\S+)", cell)
    if quoted:
        return quoted.group(1)  # ";Firmware: RepRapFirmware"
    match = re.fullmatch(r"(\S+?)(?:\s+\(.*\))?", cell)  # "Marlin(Volumetric) (;FLAVOR:...)"
    if not match:
        raise UnmappedCell(f"flavor cell: {cell!r}")
    return match.group(1)


def _producer(cell: str, *, stl: bool) -> Any:
    cell = cell.strip()
    if not cell or cell.startswith(("none", "not stated")):
        return ABSENT
    if stl:
        return ABSENT  # the cell quotes the 80-byte header / solid name: free text, no producer field
    if cell.startswith("Legacy Cura"):
        if "no version string" not in cell:
            raise UnmappedCell(f"legacy Cura producer with a version? {cell!r}")
        return {"name": "Cura"}  # identified by ;Sliced at / ;CURA_PROFILE_STRING only
    really = re.search(r"\breally (\S+) (\d\S*?)[ ,;)]", cell)
    if really:
        # "BambuStudio 2.3.0 (as written: ...; really OrcaSlicer 2.3.0 - ...)": the real slicer
        return {"name": really.group(1), "version": really.group(2)}
    head = re.split(r"\s+\(|,\s", cell, maxsplit=1)[0].strip()
    match = re.fullmatch(r"(\S+) (\S*\d\S*|master)", head)
    if not match:
        raise UnmappedCell(f"producer cell is not 'Name Version (note)': {cell!r}")
    return {"name": match.group(1), "version": match.group(2)}


def _bbox(low: str, high: str) -> Any:
    if not low.strip() and not high.strip():
        return ABSENT
    return {"min": _bbox_side(low), "max": _bbox_side(high)}


def _bbox_side(cell: str) -> list[float | None]:
    cell = cell.strip()
    if not cell:
        return [None, None, None]
    z_only = re.fullmatch(rf"z only:\s*;\s*\w+:\s*({_NUM})", cell)
    if z_only:
        return [None, None, float(z_only.group(1))]
    match = re.fullmatch(rf"({_NUM}),({_NUM}),({_NUM})(?:\s*\(.*\))?", cell)
    if not match:
        raise UnmappedCell(f"bbox cell is not 'x,y,z (note)' or 'z only: ; key: z': {cell!r}")
    return [float(v) for v in match.groups()]


#: Filament segment patterns -> kind. Kinds: "cura" (``8.36m`` / ``5.0g`` /
#: ``772.1mm3`` lists), "mm_list" length list, "g_list" gram list, "g_total"
#: preferred grams (number or list), "mm_tool" / "mm3_tool" one tool's value
#: (a tool per segment), "m_total" metres, "cm3_list" / "cm3_total" volumes,
#: "slice_weight" / "slice_filament" BambuStudio slice_info.config, "ignore".
_FILAMENT_SEGMENTS: tuple[tuple[str, str], ...] = (
    (r"Filament used: (?P<v>.+)", "cura"),
    (r"filament used \[mm\] ?= ?(?P<v>.+)", "mm_list"),
    (r"filament used \[g\] ?= ?(?P<v>.+)", "g_list"),
    (r"total filament used \[g\] ?= ?(?P<v>.+)", "g_total"),
    (r"total filament length \[mm\] ?: ?(?P<v>.+)", "mm_list"),
    (r"total filament weight \[g\] ?: ?(?P<v>.+)", "g_total"),
    (r"filament used = (?P<v>[\d.]+)mm \((?P<c>[\d.]+)cm3\)", "mm_tool"),
    (r"Material#\d+ Used: (?P<v>[\d.]+)(?: \(mm, unit not written\))?", "mm_tool"),
    (r"Ext #\d+ += +(?P<v>[\d.]+) mm +\((?P<c>[\d.]+) cm\^3\)(?: \(.*\))?", "mm_tool"),
    (r"filament_length_m = (?P<v>[\d.]+)", "m_total"),
    (r"filament_volume_cm3 = (?P<v>[\d.]+)", "cm3_total"),
    (r"filament used \[cm3\] ?= ?(?P<v>.+)", "cm3_list"),
    (r"total filament volume \[cm\^3\] ?: ?.+", "ignore"),  # BambuStudio: the mm^3 value under a cm^3 label
    (r"EXTRUDER_TRAIN\.\d+\.MATERIAL\.VOLUME_USED:(?P<v>\d+) \(mm\^3, volume not length\)", "mm3_tool"),
    (r'slice_info\.config <metadata key="weight" value="(?P<v>[\d.]+)"/>(?: \(.*\))?', "slice_weight"),
    (r'<filament id="\d+" used_m="(?P<v>[\d.]+)" used_g="(?P<g>[\d.]+)"/>', "slice_filament"),
)


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.split(r",\s*", text.strip())]


def _filament(cell: str) -> dict[str, Any]:
    """``{"mm", "g", "mm3", "mm_tools", "g_tools", "mm3_tools"}`` implied by a filament cell
    (each ``ABSENT`` when the cell does not state it; ``*_tools`` only for 2+ values)."""
    cell = cell.strip()
    mm_tools: list[float] = []
    g_tools: list[float] = []
    mm3_tools: list[float] = []
    g_total: float | None = None
    for segment in re.split(r"\s+;\s+", cell) if cell else []:
        text = segment.strip().lstrip(";").strip()
        for pattern, kind in _FILAMENT_SEGMENTS:
            match = re.fullmatch(pattern, text)
            if match:
                break
        else:
            raise UnmappedCell(f"filament segment {text!r} of {cell!r}")
        value = match.groupdict().get("v")
        if kind == "cura":
            metres = re.findall(rf"({_NUM})m(?![m\d])\b", value)
            grams = re.findall(rf"({_NUM})g\b", value)
            volumes = re.findall(rf"({_NUM})mm3\b", value)
            if not metres and not volumes:
                raise UnmappedCell(f"Cura filament without metres or mm3: {text!r}")
            mm_tools += [float(v) * 1000.0 for v in metres]
            mm3_tools += [float(v) for v in volumes]
            if grams:
                g_total = sum(float(v) for v in grams)
        elif kind == "mm_list":
            mm_tools += _numbers(value)
        elif kind == "g_list":
            g_tools = _numbers(value)
        elif kind == "g_total":
            values = _numbers(value)
            g_total = sum(values)
            if len(values) > 1:
                g_tools = values
        elif kind == "mm_tool":
            mm_tools.append(float(value))
            if match.groupdict().get("c"):
                mm3_tools.append(float(match.group("c")) * 1000.0)
        elif kind == "mm3_tool":
            mm3_tools.append(float(value))
        elif kind == "m_total":
            mm_tools.append(float(value) * 1000.0)
        elif kind in ("cm3_list", "cm3_total"):
            mm3_tools += [v * 1000.0 for v in _numbers(value)]
        elif kind == "slice_weight":
            g_total = float(value)
        elif kind == "slice_filament":
            mm_tools.append(float(value) * 1000.0)
            g_tools.append(float(match.group("g")))
    grams = g_total if g_total is not None else (sum(g_tools) if g_tools else None)

    def total(values: list[float]) -> Any:
        return sum(values) if values else ABSENT

    def tools(values: list[float]) -> Any:
        return list(values) if len(values) > 1 else ABSENT

    return {
        "mm": total(mm_tools), "g": ABSENT if grams is None else grams, "mm3": total(mm3_tools),
        "mm_tools": tools(mm_tools), "g_tools": tools(g_tools), "mm3_tools": tools(mm3_tools),
    }


# ---- comparisons -------------------------------------------------------------------


def same_value(actual: Any, expected: Any, rel: float = 1e-3) -> bool:
    """Equality with relative tolerance for numbers, case-insensitive for strings,
    element-wise for lists/dicts; ``None`` equals only ``None``."""
    if expected is None or actual is None:
        return expected is actual
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-9)
    if isinstance(expected, str) and isinstance(actual, str):
        return actual.casefold() == expected.casefold()
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(same_value(a, e, rel) for a, e in zip(actual, expected))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(same_value(actual[k], expected[k], rel) for k in expected)
    return False


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (``sha1("blob <size>\\0" + content)``)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()
