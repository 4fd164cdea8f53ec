"""Facts that slicers state in G-code comments, and how each is read.

``GcodeFacts`` is fed comment lines (``feed_line``) from wherever the file
keeps them (header, footer, the key/value blocks of a binary G-code) and
``result()`` returns the metadata fields it could read. Each rule below names
the slicer(s) that write the key; the values are taken as written and only
converted to the field's unit (``8.36128m`` -> 8361.28 mm, ``1h 2m 3s`` ->
3723 s).

Precedence: for single-valued facts the first statement met wins (header
before footer); the caller feeds the header first. Per-tool lists are summed
(filament) or must agree (nozzle diameter: all equal -> that value, differing
-> absent). Griffin ``MATERIAL.VOLUME_USED`` is a volume in mm^3, not a
length, and is deliberately not read.

Sources (vendor formats, as observed in real files; see docs/metadata.md):
Cura/CuraEngine Marlin and Griffin headers, legacy Cura 15 start code,
PrusaSlicer/Slic3r/SuperSlicer footer summary and config block, BambuStudio /
OrcaSlicer / Creality Print ``HEADER_BLOCK``, ideaMaker header and footer,
Simplify3D settings (``;   key,value``) and build summary, KISSlicer header
and footer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .values import parse_duration, parse_number, parse_number_list, split_version

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"

#: Producers whose header states the layer-change marker each layer begins
#: with; used only to count layers when no count is stated (see ``layer_marker``).
_LAYER_MARKERS: tuple[tuple[tuple[str, ...], bytes], ...] = (
    (("Cura_SteamEngine", "Cura", "ideaMaker"), rb"^;LAYER:-?\d+\s*$"),
    (("PrusaSlicer", "SuperSlicer", "OrcaSlicer", "Slic3r", "Creality_Print"), rb"^;LAYER_CHANGE\s*$"),
    (("BambuStudio",), rb"^; CHANGE_LAYER\s*$"),
    (("Simplify3D",), rb"^; layer \d+, Z = "),
    (("KISSlicer",), rb"^; BEGIN_LAYER_OBJECT\b"),
    (("Miracle-Grue",), rb"^\(Slice \d+\b"),
)

#: Producers whose head of file states all their facts (used to stop reading a
#: gzip stream early): CuraEngine's Marlin/Griffin header, BambuStudio's
#: HEADER_BLOCK + CONFIG_BLOCK at the top.
HEADER_COMPLETE_PRODUCERS = frozenset({"Cura_SteamEngine", "BambuStudio"})

#: Header-block producer lines (``; BambuStudio 01.10.02.76``): the Orca
#: family writes its name and version alone on the second header line.
_HEADER_BLOCK_PRODUCERS = (
    "BambuStudio",
    "OrcaSlicer",
    "Creality_Print",
    "CrealityPrint",
    "QIDIStudio",
    "ElegooSlicer",
    "AnycubicSlicerNext",
    "Snapmaker_Orca",
)


@dataclass
class GcodeFacts:
    """Accumulates facts from comment lines; ``result()`` builds the fields."""

    producer_name: str | None = None
    producer_version: str | None = None
    flavor: str | None = None
    print_time_s: float | None = None
    layer_height_mm: float | None = None
    layer_count: int | None = None
    #: legacy Cura writes one ``;Layer count:`` per object of a sequential print
    legacy_layer_counts: list[int] = field(default_factory=list)
    legacy_cura: bool = False
    printer_model: str | None = None
    #: filament length candidates by rule name (first rule in
    #: ``_LENGTH_PRECEDENCE`` that has a value wins)
    length_mm: dict[str, float] = field(default_factory=dict)
    #: per-tool values of list-valued rules (``"400.85, 0, 98.63"``), by rule
    per_tool: dict[str, list[float]] = field(default_factory=dict)
    #: filament volume candidates in mm^3 by rule (``_VOLUME_PRECEDENCE``)
    volume_mm3: dict[str, float] = field(default_factory=dict)
    #: per-line-summed sources keyed by rule, then by tool index or line
    length_parts: dict[str, dict[str, float]] = field(default_factory=dict)
    mass_g: dict[str, float] = field(default_factory=dict)
    nozzles: dict[str, list[float]] = field(default_factory=dict)
    kiss_nozzles: dict[str, float] = field(default_factory=dict)
    bbox_min: list[float | None] = field(default_factory=lambda: [None, None, None])
    bbox_max: list[float | None] = field(default_factory=lambda: [None, None, None])

    # ---- feeding -------------------------------------------------------

    def feed_text(self, text: str) -> None:
        """Feed every comment line of ``text``: lines starting with ``;``, and
        ``( ... )`` comment lines (RepRap/MakerBot style, Miracle-Grue)."""
        for line in text.splitlines():
            if line.startswith(";"):
                self.feed_line(line)
            elif line.startswith("(") and line.rstrip().endswith(")"):
                self.feed_line("; " + line.strip().strip("()").strip().lstrip("*").strip())

    def feed_line(self, line: str) -> None:
        """Feed one comment line (leading ``;`` and blanks are stripped)."""
        body = line.lstrip(";").strip()
        if not body.startswith(_PREFIXES):
            return
        for pattern, handler in _RULES:
            match = pattern.match(body)
            if match:
                handler(self, match)
                return

    def feed_key_value(self, key: str, value: str) -> None:
        """Feed a ``key=value`` pair of a binary G-code metadata block.

        PrusaSlicer writes the same keys there as in a text file's footer, so
        this goes through the same rules as ``; key = value``.
        """
        if key == "Producer":
            self._set_producer(*split_version(value))
            return
        self.feed_line(f"; {key} = {value}")

    # ---- setters used by the rules -----------------------------------------

    def _set_producer(self, name: str, version: str | None) -> None:
        if self.producer_name is None and name:
            self.producer_name = name
            self.producer_version = version

    def _first(self, attr: str, value: object) -> None:
        if value is not None and getattr(self, attr) is None:
            setattr(self, attr, value)

    def _set_bbox(self, which: str, axis: int, value: float | None) -> None:
        box = self.bbox_min if which == "min" else self.bbox_max
        if value is not None and box[axis] is None:
            box[axis] = value

    # ---- result ----------------------------------------------------------

    @property
    def producer_family(self) -> str | None:
        """The producer name, for dialect decisions (legacy Cura -> ``"Cura"``)."""
        if self.producer_name:
            return self.producer_name
        return "Cura" if self.legacy_cura else None

    def layer_marker(self) -> re.Pattern[bytes] | None:
        """The layer-change marker line of this producer, or ``None`` if unknown."""
        family = self.producer_family
        if family is None:
            return None
        for names, pattern in _LAYER_MARKERS:
            if family in names:
                return re.compile(pattern, re.MULTILINE)
        return None

    def header_complete(self) -> bool:
        """True when this producer states all its facts at the head of the file."""
        return self.producer_family in HEADER_COMPLETE_PRODUCERS

    def result(self, *, whole_file_seen: bool) -> dict:
        """The metadata fields read so far (absent facts are left out).

        Args:
            whole_file_seen: every line of the file was fed. Legacy Cura
                states one ``;Layer count:`` per object of a sequential print,
                anywhere in the file; their sum is the layer count only when
                every line was seen.
        """
        out: dict = {}
        family = self.producer_family
        if family:
            out["producer"] = {"name": family}
            if self.producer_version:
                out["producer"]["version"] = self.producer_version
        if self.flavor:
            out["flavor"] = self.flavor
        if self.print_time_s is not None:
            out["print_time_s"] = self.print_time_s
        rule, length = _pick(self.length_mm, self.length_parts, _LENGTH_PRECEDENCE)
        if length is not None:
            out["filament_used_mm"] = round(length, 6)
            tools = self._tools(rule)
            if tools:
                out["filament_used_mm_per_extruder"] = tools
        rule, mass = _pick(self.mass_g, {}, _MASS_PRECEDENCE)
        if mass is not None:
            out["filament_used_g"] = round(mass, 6)
            tools = next((self._tools(r) for r in _MASS_PRECEDENCE if self._tools(r)), None)
            if tools and math.isclose(sum(tools), mass, rel_tol=1e-2, abs_tol=0.02):
                out["filament_used_g_per_extruder"] = tools
        rule, volume = _pick(self.volume_mm3, self.length_parts, _VOLUME_PRECEDENCE)
        if volume is not None:
            out["filament_used_mm3"] = round(volume, 6)
            tools = self._tools(rule)
            if tools:
                out["filament_used_mm3_per_extruder"] = tools
        if self.layer_height_mm is not None:
            out["layer_height_mm"] = self.layer_height_mm
        if self.layer_count is not None:
            out["layer_count"] = self.layer_count
        elif self.legacy_layer_counts and whole_file_seen:
            out["layer_count"] = sum(self.legacy_layer_counts)
        nozzle = _agreed_nozzle(self.nozzles)
        if nozzle is not None:
            out["nozzle_diameter_mm"] = nozzle
        if any(v is not None for v in self.bbox_min + self.bbox_max):
            out["bbox_mm"] = {"min": list(self.bbox_min), "max": list(self.bbox_max)}
        if self.printer_model:
            out["printer_model"] = self.printer_model
        return out

    def _tools(self, rule: str | None) -> list[float] | None:
        """Per-tool values the winning ``rule`` stated, when it stated two or more."""
        if rule is None:
            return None
        values = self.per_tool.get(rule)
        if values is None and rule in self.length_parts:
            values = list(self.length_parts[rule].values())
        if values is None or len(values) < 2:
            return None
        return [round(v, 6) for v in values]


def _pick(
    single: dict[str, float], parts: dict[str, dict[str, float]], precedence: tuple[str, ...]
) -> tuple[str | None, float | None]:
    for rule in precedence:
        if rule in single:
            return rule, single[rule]
        if rule in parts and parts[rule]:
            return rule, sum(parts[rule].values())
    return None, None


def _agreed_nozzle(nozzles: dict[str, list[float]]) -> float | None:
    for rule in _NOZZLE_PRECEDENCE:
        values = nozzles.get(rule)
        if values:
            return values[0] if all(v == values[0] for v in values) else None
    return None


# ---- rules -------------------------------------------------------------------

_Handler = Callable[[GcodeFacts, re.Match[str]], None]
_RULES: list[tuple[re.Pattern[str], _Handler]] = []


def _rule(regex: str) -> Callable[[_Handler], _Handler]:
    def register(handler: _Handler) -> _Handler:
        _RULES.append((re.compile(regex), handler))
        return handler

    return register


def _num(match: re.Match[str], group: str | int = "v") -> float | None:
    return parse_number(match.group(group))


def _first_amount(table: str, key: str, regex: str) -> None:
    """Register a rule: group ``v`` (a number) is the first-wins candidate ``key`` of
    ``facts.<table>`` (``length_mm`` or ``mass_g``), one slicer's stated total."""

    def handler(facts: GcodeFacts, m: re.Match[str]) -> None:
        value = _num(m)
        if value is not None:
            getattr(facts, table).setdefault(key, value)

    _rule(regex)(handler)


def _first_fact(name: str, convert: Callable[[str], Any], *regexes: str) -> None:
    """Register one rule per regex (in this order): group ``v``, converted, is a first-wins value of ``name``."""
    for regex in regexes:
        _rule(regex)(lambda facts, m: facts._first(name, convert(m.group("v"))))


# Producer ------------------------------------------------------------------


@_rule(r"^generated by (?P<name>.+?)(?:\s+[vV]?(?P<version>\d\S*))?(?:\s+\(Build [^)]*\))?(?:\s+on\s+\d.*)?$")
def _generated_by(facts: GcodeFacts, m: re.Match[str]) -> None:
    # PrusaSlicer, Slic3r, SuperSlicer, OrcaSlicer, Creality Print:
    # "; generated by PrusaSlicer 2.5.0+linux-x64-GTK3 on 2023-03-07 at 15:21:14 UTC"
    facts._set_producer(m.group("name"), m.group("version"))


@_rule(r"^Generated with (?P<text>.+)$")
def _generated_with(facts: GcodeFacts, m: re.Match[str]) -> None:
    # CuraEngine: ";Generated with Cura_SteamEngine 4.10.0"; development builds
    # write the branch name as the version (";Generated with Cura_SteamEngine master")
    name, version = split_version(m.group("text"))
    if version is None and " " in name.strip():
        name, _, version = name.strip().rpartition(" ")
    facts._set_producer(name, version)


@_rule(r"^GENERATOR\.NAME:(?P<v>.+)$")
def _griffin_name(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Cura Griffin header: ";GENERATOR.NAME:Cura_SteamEngine"
    if facts.producer_name is None:
        facts.producer_name = m.group("v").strip()


@_rule(r"^GENERATOR\.VERSION:(?P<v>.+)$")
def _griffin_version(facts: GcodeFacts, m: re.Match[str]) -> None:
    if facts.producer_version is None:
        facts.producer_version = m.group("v").strip()


@_rule(r"^Sliced by (?P<name>\S+) (?P<version>\d[^,\s]*)")
def _sliced_by(facts: GcodeFacts, m: re.Match[str]) -> None:
    # ideaMaker: ";Sliced by ideaMaker 5.1.4.8480, 2025-03-11 18:58:10 UTC+0100"
    facts._set_producer(m.group("name"), m.group("version"))


@_rule(r"^G-Code generated by Simplify3D\(R\) Version (?P<version>\S+)")
def _simplify3d(facts: GcodeFacts, m: re.Match[str]) -> None:
    facts._set_producer("Simplify3D", m.group("version"))


@_rule(r"^KISSlicer\b")
def _kisslicer(facts: GcodeFacts, m: re.Match[str]) -> None:
    # "; KISSlicer - PRO" then "; version 1.6.3" two lines later
    facts._set_producer("KISSlicer", None)


@_rule(r"^version (?:\d+ [a-z]+ )?(?P<v>\d[\w.]*)(?: \S+)?$")
def _kisslicer_version(facts: GcodeFacts, m: re.Match[str]) -> None:
    # KISSlicer 1 "; version 1.6.3"; KISSlicer 2 "; version 2 a 2.0.6 Linux64"
    if facts.producer_name == "KISSlicer" and facts.producer_version is None:
        facts.producer_version = m.group("v")


@_rule(r"^(?P<name>" + "|".join(_HEADER_BLOCK_PRODUCERS) + r") [vV]?(?P<version>\d\S*)$")
def _header_block_producer(facts: GcodeFacts, m: re.Match[str]) -> None:
    # BambuStudio: "; BambuStudio 01.10.02.76" (second line of HEADER_BLOCK)
    facts._set_producer(m.group("name"), m.group("version"))


@_rule(r"^Generated by (?P<name>Miracle-Grue) v ?(?P<version>\d\S*)")
def _miracle_grue(facts: GcodeFacts, m: re.Match[str]) -> None:
    # "(* Generated by Miracle-Grue v 0.04 alpha)" (parenthesised comment)
    facts._set_producer(m.group("name"), m.group("version"))


@_rule(r"^(?:Sliced at: |CURA_PROFILE_STRING:)")
def _legacy_cura(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Legacy Cura 15.x start code writes ";Sliced at: ..." (and ";Basic
    # settings: Layer height: ...", see below); its profile string ends the file.
    facts.legacy_cura = True


# Flavour ------------------------------------------------------------------


_first_fact(
    "flavor", str.strip,
    r"^FLAVOR:(?P<v>\S+)$",  # Cura
    r"^gcode_flavor = (?P<v>\S+)$",  # PrusaSlicer / Slic3r config block
    r"^Firmware: (?P<v>\S.*)$",  # ideaMaker
)


# Print time ----------------------------------------------------------------


_first_fact(
    "print_time_s", parse_number,
    r"^TIME:(?P<v>" + _NUM + r")$",  # Cura (seconds)
    r"^PRINT\.TIME:(?P<v>" + _NUM + r")$",  # Cura Griffin header
)
_first_fact(
    "print_time_s", parse_duration,
    # PrusaSlicer; the "(silent mode)" estimate does not match on purpose
    r"^estimated printing time(?: \(normal mode\))? = (?P<v>.+)$",
    # BambuStudio for Bambu printers: "; model printing time: 5m 39s; total estimated time: 11m 4s" -
    # the total (whole G-code, start sequence included) is what the others' estimates cover
    r"^(?:model printing time: [^;]*; )?total estimated time: (?P<v>[^;]+)$",
    # legacy Cura ";Print time: 37 minutes"; ideaMaker footer ";Print Time: 1835" (s)
    r"^Print [Tt]ime: (?P<v>.+)$",
    r"^Build time: (?P<v>.+)$",  # Simplify3D ";   Build time: 0 hours 42 minutes"
    r"^Estimated Build Time: (?P<v>.+)$",  # KISSlicer "; Estimated Build Time:   332.83 minutes"
    # KISSlicer 2: the export-time calculation (the GUI estimate and the
    # "pre-cool" total on the next lines do not match on purpose)
    r"^Calculated-during-export Build Time: (?P<v>.+)$",
)


# Filament ------------------------------------------------------------------

_LENGTH_PRECEDENCE = (
    "cura_m",
    "prusa_mm",
    "bambu_total_mm",
    "slic3r_mm",
    "slic3r13_m",
    "ideamaker_mm",
    "s3d_mm",
    "kiss_mm",
)
_MASS_PRECEDENCE = ("prusa_total_g", "bambu_total_g", "prusa_g", "legacy_cura_g", "s3d_g")
#: Volumes. BambuStudio's "total filament volume [cm^3]" is not read: it
#: writes the mm^3 value under a cm^3 label (observed in every sample), so
#: its unit is unknown.
_VOLUME_PRECEDENCE = ("cura_mm3", "griffin_mm3", "prusa_cm3", "slic3r_cm3", "slic3r13_cm3", "kiss_cm3")


@_rule(r"^Filament used: (?P<v>.+)$")
def _cura_filament(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Cura ";Filament used: 8.36128m" (per extruder: "1.2m, 0.3m");
    # legacy Cura ";Filament used: 1.707m 5.0g"
    if "cura_m" in facts.length_mm:
        return
    text = m.group("v")
    metres = re.findall(r"(" + _NUM + r")\s*m(?![a-zA-Z0-9])", text)
    grams = re.findall(r"(" + _NUM + r")\s*g\b", text)
    volumes = re.findall(r"(" + _NUM + r")\s*mm3\b", text)  # Cura Marlin(Volumetric): "772.133mm3, 674.215mm3"
    if volumes:
        facts.volume_mm3.setdefault("cura_mm3", sum(float(v) for v in volumes))
        facts.per_tool.setdefault("cura_mm3", [float(v) for v in volumes])
    if metres:
        facts.length_mm["cura_m"] = sum(float(v) for v in metres) * 1000.0
        facts.per_tool["cura_m"] = [float(v) * 1000.0 for v in metres]
    if grams and "legacy_cura_g" not in facts.mass_g:
        facts.mass_g["legacy_cura_g"] = sum(float(v) for v in grams)


@_rule(r"^filament used \[mm\] = (?P<v>.+)$")
def _prusa_filament_mm(facts: GcodeFacts, m: re.Match[str]) -> None:
    values = parse_number_list(m.group("v"))
    if values is not None and "prusa_mm" not in facts.length_mm:
        facts.length_mm["prusa_mm"] = sum(values)
        facts.per_tool["prusa_mm"] = values


@_rule(r"^filament used \[g\] = (?P<v>.+)$")
def _prusa_filament_g(facts: GcodeFacts, m: re.Match[str]) -> None:
    values = parse_number_list(m.group("v"))
    if values is not None and "prusa_g" not in facts.mass_g:
        facts.mass_g["prusa_g"] = sum(values)
        facts.per_tool["prusa_g"] = values


@_rule(r"^filament used \[cm3\] = (?P<v>.+)$")
def _prusa_filament_cm3(facts: GcodeFacts, m: re.Match[str]) -> None:
    values = parse_number_list(m.group("v"))
    if values is not None and "prusa_cm3" not in facts.volume_mm3:
        facts.volume_mm3["prusa_cm3"] = sum(values) * 1000.0
        facts.per_tool["prusa_cm3"] = [v * 1000.0 for v in values]


def _list_amount(table: str, key: str, regex: str) -> None:
    """Register a rule: group ``v`` (a number or a comma list, one per used
    filament) is the first-wins candidate ``key`` of ``facts.<table>``,
    summed; the list is kept per tool."""

    def handler(facts: GcodeFacts, m: re.Match[str]) -> None:
        values = parse_number_list(m.group("v"), separators=",")
        if values is not None and key not in getattr(facts, table):
            getattr(facts, table)[key] = sum(values)
            facts.per_tool[key] = values

    _rule(regex)(handler)


_first_amount("mass_g", "prusa_total_g", r"^total filament used \[g\] = (?P<v>" + _NUM + r")$")
# BambuStudio / Orca header: "; total filament length [mm] : 7854.52,2915.81" (one per used filament)
_list_amount("length_mm", "bambu_total_mm", r"^total filament length \[mm\] : (?P<v>.+)$")
_list_amount("mass_g", "bambu_total_g", r"^total filament weight \[g\] : (?P<v>.+)$")


@_rule(r"^filament_length_m = (?P<v>" + _NUM + r")\s*$")
def _slic3r13_length(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Slic3r 1.3 (mainline) after the end G-code: "; filament_length_m = 0.0015 " - metres
    value = _num(m)
    if value is not None:
        facts.length_mm.setdefault("slic3r13_m", value * 1000.0)


@_rule(r"^filament_volume_cm3 = (?P<v>" + _NUM + r")\s*$")
def _slic3r13_volume(facts: GcodeFacts, m: re.Match[str]) -> None:
    value = _num(m)
    if value is not None:
        facts.volume_mm3.setdefault("slic3r13_cm3", value * 1000.0)


@_rule(r"^filament used = (?P<v>" + _NUM + r")mm\b")
def _slic3r_filament(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Slic3r / Slic3r PE <= 1.41: one "; filament used = 12349.1mm (29.7cm3)"
    # line per extruder, in extruder order
    value = _num(m)
    if value is not None:
        parts = facts.length_parts.setdefault("slic3r_mm", {})
        index = str(len(parts))
        parts[index] = value
        volume = re.search(r"\((" + _NUM + r")cm3\)", m.string)
        if volume:
            facts.length_parts.setdefault("slic3r_cm3", {})[index] = float(volume.group(1)) * 1000.0


@_rule(r"^Material#(?P<tool>\d+) Used: (?P<v>" + _NUM + r")$")
def _ideamaker_filament(facts: GcodeFacts, m: re.Match[str]) -> None:
    # ideaMaker footer ";Material#1 Used: 1643.4" - millimetres (ideaMaker
    # writes lengths in mm throughout; the unit is not repeated here)
    value = _num(m)
    if value is not None:
        facts.length_parts.setdefault("ideamaker_mm", {}).setdefault(m.group("tool"), value)


_first_amount("length_mm", "s3d_mm", r"^Filament length: (?P<v>" + _NUM + r") mm\b")
_first_amount("mass_g", "s3d_g", r"^Plastic weight: (?P<v>" + _NUM + r") g\b")


@_rule(r"^Ext #?(?P<tool>\d+) += +(?P<v>" + _NUM + r") mm\b")
def _kiss_filament(facts: GcodeFacts, m: re.Match[str]) -> None:
    # KISSlicer footer ";    Ext 1 =    53.49 mm  (0.378 cm^3)"; KISSlicer 2 ";    Ext #1  =     0.10 mm  (0.001 cm^3)"
    value = _num(m)
    if value is not None:
        facts.length_parts.setdefault("kiss_mm", {}).setdefault(m.group("tool"), value)
        volume = re.search(r"\((" + _NUM + r") cm\^3\)", m.string)
        if volume:
            facts.length_parts.setdefault("kiss_cm3", {}).setdefault(m.group("tool"), float(volume.group(1)) * 1000.0)


# Layer height ----------------------------------------------------------------


_first_fact("layer_height_mm", parse_number, r"^Layer height: (?P<v>" + _NUM + r")$")  # Cura


@_rule(r"^Basic settings: Layer height: (?P<v>" + _NUM + r")\b")
def _legacy_layer_height(facts: GcodeFacts, m: re.Match[str]) -> None:
    facts.legacy_cura = True
    facts._first("layer_height_mm", _num(m))


_first_fact(
    "layer_height_mm", parse_number,
    r"^layer_height = (?P<v>" + _NUM + r")$",  # PrusaSlicer / Slic3r config block
    r"^layerHeight,(?P<v>" + _NUM + r")$",  # Simplify3D settings
    r"^layer_thickness_mm = (?P<v>" + _NUM + r")$",  # KISSlicer
)


# Layer count ----------------------------------------------------------------


@_rule(r"^(?:LAYER_COUNT:|total layer number: |total layers count = |layer_count = |NUM_LAYERS: ?)(?P<v>\d+)$")
def _layer_count(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Cura ";LAYER_COUNT:25"; Bambu/Orca header "; total layer number: 25";
    # PrusaSlicer/Orca footer "; total layers count = 190"
    facts._first("layer_count", int(m.group("v")))


@_rule(r"^Layer count: (?P<v>\d+)$")
def _legacy_layer_count(facts: GcodeFacts, m: re.Match[str]) -> None:
    # legacy Cura: one per object of a one-at-a-time print (summed in result())
    facts.legacy_layer_counts.append(int(m.group("v")))


# Nozzle ---------------------------------------------------------------------

_NOZZLE_PRECEDENCE = ("prusa", "griffin", "s3d", "kiss")


@_rule(r"^nozzle_diameter = (?P<v>.+)$")
def _prusa_nozzle(facts: GcodeFacts, m: re.Match[str]) -> None:
    values = parse_number_list(m.group("v"))
    if values and "prusa" not in facts.nozzles:
        facts.nozzles["prusa"] = values


@_rule(r"^EXTRUDER_TRAIN\.(?P<tool>\d+)\.NOZZLE\.DIAMETER:(?P<v>" + _NUM + r")$")
def _griffin_nozzle(facts: GcodeFacts, m: re.Match[str]) -> None:
    value = _num(m)
    if value is not None:
        facts.nozzles.setdefault("griffin", []).append(value)


@_rule(r"^nozzle_dia_(?P<tool>\d+) = (?P<v>" + _NUM + r")$")
def _kiss_nozzle(facts: GcodeFacts, m: re.Match[str]) -> None:
    # KISSlicer: "; nozzle_dia_1 = 0.4" .. nozzle_dia_12 (the config is written twice)
    value = _num(m)
    if value is not None:
        facts.kiss_nozzles.setdefault(m.group("tool"), value)
        facts.nozzles["kiss"] = list(facts.kiss_nozzles.values())


@_rule(r"^EXTRUDER_TRAIN\.(?P<tool>\d+)\.MATERIAL\.VOLUME_USED:(?P<v>" + _NUM + r")$")
def _griffin_volume(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Cura Griffin header: mm^3 per extruder train
    value = _num(m)
    if value is not None:
        facts.length_parts.setdefault("griffin_mm3", {}).setdefault(m.group("tool"), value)


# Printer model ----------------------------------------------------------------

_first_fact(
    "printer_model", lambda v: v.strip().strip('"') or None,
    r"^printer_model = (?P<v>.+)$",  # PrusaSlicer / Orca / Bambu config block, bgcode PrinterMetadata
    r"^TARGET_MACHINE\.NAME:(?P<v>.+)$",  # Cura (Griffin header; Marlin headers of Cura 5 too)
)


@_rule(r"^extruderDiameter,(?P<v>.+)$")
def _s3d_nozzle(facts: GcodeFacts, m: re.Match[str]) -> None:
    values = parse_number_list(m.group("v"), separators=",|")
    if values and "s3d" not in facts.nozzles:
        facts.nozzles["s3d"] = values


# Bounding box ---------------------------------------------------------------

_AXIS = {"X": 0, "Y": 1, "Z": 2}


@_rule(r"^(?P<which>MIN|MAX)(?P<axis>[XYZ]) ?[:=] ?(?P<v>" + _NUM + r")$")
def _cura_bbox(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Cura ";MINX:-82.48"; Creality Print "; MINX = 10.00"
    facts._set_bbox(m.group("which").lower(), _AXIS[m.group("axis")], _num(m))


@_rule(r"^PRINT\.SIZE\.(?P<which>MIN|MAX)\.(?P<axis>[XYZ]):(?P<v>" + _NUM + r")$")
def _griffin_bbox(facts: GcodeFacts, m: re.Match[str]) -> None:
    facts._set_bbox(m.group("which").lower(), _AXIS[m.group("axis")], _num(m))


@_rule(r"^Bounding Box: (?P<v>.+)$")
def _ideamaker_bbox(facts: GcodeFacts, m: re.Match[str]) -> None:
    # ideaMaker ";Bounding Box: minX maxX minY maxY minZ maxZ" (interleaved)
    parts = m.group("v").split()
    values = [parse_number(p) for p in parts]
    if len(values) == 6 and all(v is not None for v in values):
        for axis in range(3):
            facts._set_bbox("min", axis, values[2 * axis])
            facts._set_bbox("max", axis, values[2 * axis + 1])


@_rule(r"^(?:max_z_height: |max_layer_z = )(?P<v>" + _NUM + r")$")
def _top_z(facts: GcodeFacts, m: re.Match[str]) -> None:
    # Bambu/Orca header "; max_z_height: 5.00"; PrusaSlicer binary G-code
    # PrinterMetadata "max_layer_z=5.00": the top of the print, nothing else
    facts._set_bbox("max", 2, _num(m))


#: Quick pre-filter: the literal starts of every rule above.
_PREFIXES: tuple[str, ...] = (
    "generated by", "Generated with", "GENERATOR.", "Sliced by", "G-Code generated by",
    "KISSlicer", "version ", *(p + " " for p in _HEADER_BLOCK_PRODUCERS),
    "Sliced at: ", "CURA_PROFILE_STRING:", "Basic settings: ",
    "FLAVOR:", "gcode_flavor = ", "Firmware: ",
    "TIME:", "PRINT.TIME:", "estimated printing time", "model printing time: ", "total estimated time: ", "Print time: ", "Print Time: ",
    "Build time: ", "Estimated Build Time: ",
    "Filament used: ", "filament used ", "total filament ", "Material#", "Filament length: ",
    "Plastic weight: ", "Ext ", "filament_length_m = ", "filament_volume_cm3 = ", "nozzle_dia_",
    "printer_model = ", "TARGET_MACHINE.NAME:", "Calculated-during-export Build Time: ", "Generated by Miracle-Grue",
    "Layer height: ", "layer_height = ", "layerHeight,", "layer_thickness_mm = ",
    "LAYER_COUNT:", "total layer number: ", "total layers count = ", "layer_count = ", "NUM_LAYERS:", "Layer count: ",
    "nozzle_diameter = ", "EXTRUDER_TRAIN.", "extruderDiameter,",
    "MIN", "MAX", "PRINT.SIZE.", "Bounding Box: ", "max_z_height: ", "max_layer_z = ",
)
