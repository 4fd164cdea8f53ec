"""What slicers store in a 3MF package beside the model: sliced plates, settings, previews.

Read by ``package_facts`` in this order (the first statement of a fact wins):

1. the plate G-code(s) ``Metadata/plate_N.gcode`` of a sliced ``.gcode.3mf``
   (BambuStudio, OrcaSlicer and forks), read like any text G-code
   (``gcode.extract_gcode_stream``, bounded memory). Several plates: times,
   filament and volumes are summed, single-valued facts are the first
   plate's, ``layer_count`` only with one plate;
2. ``Metadata/slice_info.config`` (BambuStudio family): per plate
   ``prediction`` (s) and ``weight`` (g), ``<filament used_m used_g>``;
   present (from an earlier slice) in unsliced projects too;
3. ``Metadata/project_settings.config`` (BambuStudio family, JSON):
   ``layer_height``, ``nozzle_diameter`` (per extruder, all equal),
   ``gcode_flavor``, ``printer_model``;
4. Cura's container stack (``Cura/*.global.cfg``): ``layer_height`` from the
   first container of the stack (user, quality changes, intent, quality,
   material, variant, definition changes) that sets it to a number (a
   ``=formula`` is not a stated value); ``Cura/version.ini`` ``cura_version``;
   the machine definition's ``name`` as printer model.

Producer: the plate G-code's generator line; else Cura's ``version.ini``;
else the model's ``Application`` metadata. BambuStudio writes
``BambuStudio-NN.NN.NN.NN`` (two-digit, zero-padded, four fields). The
OrcaSlicer family writes ``Application=BambuStudio-<its own version>`` to stay
compatible with Bambu's tools, so a ``BambuStudio-`` version of any other
form is not Bambu Studio: it is named ``OrcaSlicer``, or the vendor fork
``_VENDOR_FORKS`` names when the fork stamps its own ``X-BBL-Client-Version``
in ``slice_info.config`` (OrcaSlicer leaves it empty) and the project's
printer is that vendor's. ``application`` keeps the text as written.

Thumbnails, in order of preference: ``Metadata/plate_1.png`` (the plate
render), the package thumbnail relationship's target, Cura's
``Metadata/thumbnail.png``, the plate G-code's thumbnail blocks.
"""

from __future__ import annotations

import configparser
import json
import logging
import re
from pathlib import PurePosixPath
from xml.etree import ElementTree

from .errors import ExtractionError
from .gcode import extract_gcode_stream
from .package import THUMBNAIL_RELATIONSHIP, UTF8_BOM, Package, normalise
from .thumbnail import Candidate
from .values import parse_number, split_version

log = logging.getLogger(__name__)

_PLATE_GCODE = re.compile(r"^metadata/plate_(\d+)\.gcode$")
_BAMBU_VERSION = re.compile(r"\d{2}\.\d{2}\.\d{2}\.\d{2}")
#: OrcaSlicer forks that stamp their own client version, by the vendor word
#: their printer profiles start with (observed: ElegooSlicer 1.1.8).
_VENDOR_FORKS = {"elegoo": "ElegooSlicer"}
#: Plate G-code facts summed over plates.
_SUMMED = ("print_time_s", "filament_used_mm", "filament_used_g", "filament_used_mm3")


def package_facts(package: Package, model_metadata: dict[str, str]) -> dict:
    """Slicer facts of a 3MF package (module docstring); may hold ``_thumbnails``."""
    out: dict = {}
    plates = sorted(
        ((int(m.group(1)), name) for name in package.names() if (m := _PLATE_GCODE.match(normalise(name)))),
    )
    gcode_thumbnails: list[Candidate] = []
    for index, (_, part) in enumerate(plates):
        with package.open(part) as stream:
            facts = extract_gcode_stream(stream, f"{package.name}!/{part.lstrip('/')}")
        gcode_thumbnails.extend(facts.pop("_thumbnails", []))
        facts.pop("format", None)
        if index == 0:
            out.update(facts)
            continue
        for key in _SUMMED:
            if key in facts and key in out:
                out[key] = round(out[key] + facts[key], 6)
        out.pop("layer_count", None)
        for key in ("filament_used_mm_per_extruder", "filament_used_g_per_extruder", "filament_used_mm3_per_extruder"):
            out.pop(key, None)
    slice_info = _slice_info(package)
    settings = _project_settings(package)
    cura = _cura(package)
    for source in (slice_info.get("facts", {}), settings, cura.get("facts", {})):
        for key, value in source.items():
            out.setdefault(key, value)
    plate_count = _plate_count(package, len(plates), slice_info.get("plates", 0))
    if plate_count:
        out["plate_count"] = plate_count
    application = model_metadata.get("Application", "").strip()
    if application:
        out["application"] = application
    if "producer" not in out:
        producer = cura.get("producer") or _application_producer(
            application, slice_info.get("client_version"), out.get("printer_model")
        )
        if producer:
            out["producer"] = producer
    thumbnails = _package_thumbnails(package) + gcode_thumbnails
    if thumbnails:
        out["_thumbnails"] = thumbnails
    return out


def _application_producer(application: str, client_version: str | None, printer_model: str | None) -> dict | None:
    if not application:
        return None
    name, version = split_version(application)
    if name == "BambuStudio" and version and not _BAMBU_VERSION.fullmatch(version):
        name = "OrcaSlicer"
        vendor = (printer_model or "").split(" ")[0].lower()
        if client_version and vendor in _VENDOR_FORKS:
            name = _VENDOR_FORKS[vendor]
    return {"name": name, **({"version": version} if version else {})}


def _xml(package: Package, part: str) -> ElementTree.Element | None:
    if not package.has(part):
        return None
    data = package.read(part).removeprefix(UTF8_BOM).lstrip()
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        log.warning("%s: %s is not well-formed XML (%s); ignored", package.name, part, exc)
        return None


def _slice_info(package: Package) -> dict:
    root = _xml(package, "Metadata/slice_info.config")
    if root is None:
        return {}
    found: dict = {"facts": {}}
    for item in root.iter("header_item"):
        if item.get("key") == "X-BBL-Client-Version":
            found["client_version"] = (item.get("value") or "").strip() or None
    plates = root.findall("plate")
    found["plates"] = len(plates)
    time = weight = 0.0
    have_time = have_weight = False
    metres: list[float] = []
    grams: list[float] = []
    for plate in plates:
        meta = {m.get("key"): m.get("value") for m in plate.findall("metadata")}
        prediction = parse_number(meta.get("prediction") or "")
        if prediction is not None:
            time += prediction
            have_time = True
        mass = parse_number(meta.get("weight") or "")
        if mass is not None:
            weight += mass
            have_weight = True
        for filament in plate.findall("filament"):
            used_m = parse_number(filament.get("used_m") or "")
            used_g = parse_number(filament.get("used_g") or "")
            if used_m is not None:
                metres.append(used_m)
            if used_g is not None:
                grams.append(used_g)
    facts = found["facts"]
    if have_time:
        facts["print_time_s"] = time
    if have_weight:
        facts["filament_used_g"] = round(weight, 6)
    elif grams:
        facts["filament_used_g"] = round(sum(grams), 6)
    if metres:
        facts["filament_used_mm"] = round(sum(metres) * 1000.0, 6)
        if len(metres) > 1 and len(plates) == 1:
            facts["filament_used_mm_per_extruder"] = [round(m * 1000.0, 6) for m in metres]
    if len(grams) > 1 and len(plates) == 1:
        facts["filament_used_g_per_extruder"] = grams
    return found


def _project_settings(package: Package) -> dict:
    if not package.has("Metadata/project_settings.config"):
        return {}
    try:
        settings = json.loads(package.read("Metadata/project_settings.config").removeprefix(UTF8_BOM))
    except (ValueError, ExtractionError) as exc:
        log.warning("%s: Metadata/project_settings.config is not JSON (%s); ignored", package.name, exc)
        return {}
    if not isinstance(settings, dict):
        return {}
    out: dict = {}
    height = parse_number(str(settings.get("layer_height", "")))
    if height is not None:
        out["layer_height_mm"] = height
    nozzles = settings.get("nozzle_diameter")
    if isinstance(nozzles, str):
        nozzles = [nozzles]
    if isinstance(nozzles, list) and nozzles:
        values = [parse_number(str(v)) for v in nozzles]
        if all(v is not None for v in values) and all(v == values[0] for v in values):
            out["nozzle_diameter_mm"] = values[0]
    flavor = settings.get("gcode_flavor")
    if isinstance(flavor, str) and flavor.strip():
        out["flavor"] = flavor.strip()
    model = settings.get("printer_model")
    if isinstance(model, str) and model.strip():
        out["printer_model"] = model.strip()
    return out


def _plate_count(package: Package, plate_gcodes: int, slice_plates: int) -> int:
    root = _xml(package, "Metadata/model_settings.config")
    listed = len(root.findall("plate")) if root is not None else 0
    return max(listed, plate_gcodes, slice_plates if plate_gcodes else 0)


def _ini(package: Package, part: str) -> configparser.ConfigParser | None:
    if not package.has(part):
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(package.read(part).removeprefix(UTF8_BOM).decode("utf-8", errors="replace"))
    except configparser.Error as exc:
        log.warning("%s: %s is not an INI file (%s); ignored", package.name, part, exc)
        return None
    return parser


def _cura(package: Package) -> dict:
    """Cura project facts: producer, layer height and printer from the container stack."""
    found: dict = {"facts": {}}
    version = _ini(package, "Cura/version.ini")
    if version is not None and version.get("versions", "cura_version", fallback="").strip():
        found["producer"] = {"name": "Cura", "version": version.get("versions", "cura_version").strip()}
    stacks = [name for name in package.names() if normalise(name).startswith("cura/") and name.endswith(".global.cfg")]
    if not stacks:
        return found
    stack = _ini(package, stacks[0])
    if stack is None or not stack.has_section("containers"):
        return found
    containers = [value for _, value in sorted(stack.items("containers"), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)]
    folder = str(PurePosixPath(stacks[0]).parent)
    for container in containers[:-1]:
        values = _ini(package, f"{folder}/{container}.inst.cfg")
        if values is None or not values.has_option("values", "layer_height"):
            continue
        height = parse_number(values.get("values", "layer_height"))
        if height is not None:
            found["facts"]["layer_height_mm"] = height
            break
    if containers:
        definition = f"{folder}/{containers[-1]}.def.json"
        if package.has(definition):
            try:
                name = json.loads(package.read(definition)).get("name")
            except (ValueError, AttributeError, ExtractionError):
                name = None
            if isinstance(name, str) and name.strip():
                found["facts"]["printer_model"] = name.strip()
    return found


def _package_thumbnails(package: Package) -> list[Candidate]:
    parts: list[str] = []
    if package.has("Metadata/plate_1.png"):
        parts.append("Metadata/plate_1.png")
    try:
        rels = package.relationships()
    except ExtractionError:
        rels = []
    parts += [target for kind, target in rels if kind == THUMBNAIL_RELATIONSHIP]
    parts.append("Metadata/thumbnail.png")
    seen: set[str] = set()
    found: list[Candidate] = []
    for part in parts:
        key = normalise(part)
        if key in seen or not package.has(part):
            continue
        seen.add(key)
        try:
            data = package.read(part, limit=16 * 1024 * 1024)
        except ExtractionError as exc:
            log.warning("%s", exc)
            continue
        found.append(Candidate(data, PurePosixPath(key).suffix.lstrip(".") or "png", part.lstrip("/")))
    return found
