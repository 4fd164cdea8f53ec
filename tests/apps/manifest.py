"""Reader of ``../shared/samples/MANIFEST.tsv``: what each sample states, as metadata fields.

The manifest's cells hold values *as written* with provenance in
parentheses (``0.2 (;Layer height: 0.2)``), sums (``72 + 58``), per-tool
lists (``0.4,0.4,0.4,0.4,0.4``) and prose (``z only: ; max_z_height: 5.00``).
This module turns every cell into the metadata value it implies, by the
explicit rules below. A cell that matches no rule raises ``UnmappedCell``:
the corpus test then fails naming the file and column - nothing is silently
skipped.

Column -> field (``COLUMNS``; "provenance" columns are not facts):

=====================  ======================  ===========================================
column                 field                   cell rule
=====================  ======================  ===========================================
producer               producer {name,version} ``Name Version (note)`` / ``Name Version, note``;
                                               ``none (...)`` / ``not stated ...`` -> absent;
                                               "no version string" -> version absent,
                                               ``Legacy Cura 15.x`` -> name ``Cura``;
                                               STL rows: the cell quotes the free-text
                                               header / solid name, STL has no producer
                                               field -> absent
print_time_s           print_time_s            integer seconds
filament_as_written    filament_used_mm,       segments split on `` ; ``, each read by
                       filament_used_g         ``_FILAMENT_SEGMENTS`` (``8.36128m`` ->
                                               8361.28 mm; per-tool lists summed; ``total
                                               ... [g]`` preferred; volumes ignored;
                                               Griffin VOLUME_USED -> no length)
layer_height           layer_height_mm         leading number; "no global layer-height
                                               key" -> absent (per-layer heights only)
layer_count            layer_count             leading integer; ``A + B`` -> A + B (one
                                               ``;Layer count`` per object of a
                                               sequential print = total layers)
nozzle_diameter        nozzle_diameter_mm      leading number or per-extruder list: all
                                               equal -> that value, else absent;
                                               "interpretation, not labelled" -> absent
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
    "producer", "print_time_s", "filament_used_mm", "filament_used_g", "layer_height_mm",
    "layer_count", "nozzle_diameter_mm", "flavor", "bbox_mm",
)
MESH_FIELDS = ("triangle_count", "object_count", "unit")

#: Files that must fail, and a phrase their reason must contain (documented decisions).
EXPECTED_FAILURES: dict[str, str] = {
    "broken/benchy_git_lfs_pointer.gcode": "Git LFS pointer",
    "broken/fdn_all_empty.gcode": "empty (0 bytes)",
    "broken/MUSTFAIL_NonExist3DModelPart.3mf": "no 3D model part",
    "broken/MUSTFAIL_NonUTF_Encoding.3mf": "cannot be read",
    # decision: a malformed facet (normal "+inf -inf weirdvalue", "endloop foo")
    # fails instead of being guessed; see docs/metadata.md
    "broken/20mmbox-nonstandard.stl": "malformed ASCII STL",
}

#: (path, field) -> (expected value, why it differs from the manifest cell).
OVERRIDES: dict[tuple[str, str], tuple[Any, str]] = {
    ("prusaslicer/prusa_slicer.bgcode", "flavor"): (
        "marlin2",
        "stated as gcode_flavor=marlin2 in the deflate-compressed SlicerMetadata block; "
        "the manifest read only the uncompressed blocks ('strings')",
    ),
    ("prusaslicer/prusa_slicer.bgcode", "bbox_mm"): (
        {"min": [None, None, None], "max": [None, None, 5.0]},
        "PrinterMetadata states max_layer_z=5.00 (quoted in the notes column): the top of "
        "the print, read like BambuStudio's max_z_height",
    ),
}
#: Rows whose content is byte-identical to another row's file once decompressed
#: (the notes say so; the corpus test verifies it): expected facts are that row's.
SAME_CONTENT_AS: dict[str, str] = {
    "broken/um3.gcode.gz": "cura_griffin/um3.gcode",
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

    @property
    def path(self) -> str:
        return self.cells["path"]

    @property
    def file(self) -> Path:
        return SAMPLES / self.path


def read_manifest(path: Path = MANIFEST) -> list[Row]:
    """All rows, with ``expected`` filled by the column rules (see module doc).

    Raises:
        ValueError: the header is not ``COLUMNS`` or a row has the wrong width.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = tuple(next(reader))
        if header != COLUMNS:
            raise ValueError(f"{path}: columns changed: {header} != {COLUMNS}")
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not any(cells):
                continue
            if len(cells) != len(COLUMNS):
                raise ValueError(f"{path}:{number}: {len(cells)} cells, expected {len(COLUMNS)}")
            rows.append(_expect(Row(dict(zip(COLUMNS, cells, strict=True)))))
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
        "filament_used_mm": lambda: _filament(c["filament_as_written"])[0],
        "filament_used_g": lambda: _filament(c["filament_as_written"])[1],
        "layer_height_mm": lambda: _layer_height(c["layer_height"]),
        "layer_count": lambda: _layer_count(c["layer_count"]),
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
    match = re.fullmatch(r"(\w+)(?:\s*\(.*\))?", cell)
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
    head = re.split(r"\s+\(|,\s", cell, maxsplit=1)[0].strip()
    match = re.fullmatch(r"(\S+) (\S*\d\S*)", head)
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


#: Filament segment patterns -> (kind, how the value is read). Kinds:
#: "mm" length, "m" metres, "g" grams, "g_total" preferred grams,
#: "ignore" (volumes, costs: no field), "no_length" (Griffin volume).
_FILAMENT_SEGMENTS: tuple[tuple[str, str], ...] = (
    (r"Filament used: (?P<v>.+)", "cura"),
    (r"filament used \[mm\] ?= ?(?P<v>.+)", "mm_list"),
    (r"filament used \[g\] ?= ?(?P<v>.+)", "g_list"),
    (r"total filament used \[g\] ?= ?(?P<v>.+)", "g_total"),
    (r"total filament length \[mm\] ?: ?(?P<v>.+)", "mm_list"),
    (r"total filament weight \[g\] ?: ?(?P<v>.+)", "g_total"),
    (r"filament used = (?P<v>[\d.]+)mm \(.*\)", "mm_list"),
    (r"Material#\d+ Used: (?P<v>[\d.]+)(?: \(mm, unit not written\))?", "mm_sum"),
    (r"filament used \[cm3\] ?= ?.+|total filament volume \[cm\^3\] ?: ?.+", "ignore"),
    (r"EXTRUDER_TRAIN\.\d+\.MATERIAL\.VOLUME_USED:\d+ \(mm\^3, volume not length\)", "no_length"),
)


def _filament(cell: str) -> tuple[Any, Any]:
    """``(filament_used_mm, filament_used_g)`` implied by a filament cell."""
    cell = cell.strip()
    if not cell:
        return ABSENT, ABSENT
    mm: float | None = None
    g_sum: float | None = None
    g_total: float | None = None
    for segment in re.split(r"\s+;\s+", cell):
        text = segment.strip().lstrip(";").strip()
        for pattern, kind in _FILAMENT_SEGMENTS:
            match = re.fullmatch(pattern, text)
            if match:
                break
        else:
            raise UnmappedCell(f"filament segment {text!r} of {cell!r}")
        value = match.groupdict().get("v")
        if kind == "cura":
            metres = re.findall(rf"({_NUM})m\b", value)
            grams = re.findall(rf"({_NUM})g\b", value)
            if not metres:
                raise UnmappedCell(f"Cura filament without metres: {text!r}")
            mm = (mm or 0.0) + sum(float(v) for v in metres) * 1000.0
            if grams:
                g_total = sum(float(v) for v in grams)
        elif kind in ("mm_list", "mm_sum"):
            mm = (mm or 0.0) + sum(float(v) for v in re.split(r",\s*", value))
        elif kind == "g_list":
            g_sum = sum(float(v) for v in re.split(r",\s*", value))
        elif kind == "g_total":
            g_total = float(value)
    grams = g_total if g_total is not None else g_sum
    return (ABSENT if mm is None else mm), (ABSENT if grams is None else grams)


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
