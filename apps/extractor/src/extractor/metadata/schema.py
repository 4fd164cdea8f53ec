"""The shape of a metadata object: one place for the field names.

``extract_metadata`` returns a plain ``dict`` with these keys; a fact the
file does not state is *absent* (the key is missing), never ``None``, never
guessed. Lengths are millimetres, times seconds, masses grams, whatever the
file wrote (metres, inches, ``1h 2m 3s``). docs/metadata.md gives the
semantics of every field per format.
"""

from __future__ import annotations

from typing import TypedDict


class Producer(TypedDict, total=False):
    """The program that wrote the file: ``name`` always, ``version`` when stated."""

    name: str
    version: str


class BoundingBox(TypedDict):
    """Axis-aligned box in mm: ``min``/``max`` are ``[x, y, z]``.

    For G-code an axis the file does not state is ``None`` (BambuStudio and
    OrcaSlicer state only the top, ``max_z_height``).
    """

    min: list[float | None]
    max: list[float | None]


class Metadata(TypedDict, total=False):
    """One file's metadata (all keys but ``format`` optional)."""

    format: str  # "gcode" | "bgcode" | "stl" | "3mf" | "ufp" (pipeline_core.formats.FileFormat)
    producer: Producer
    application: str  # 3MF: the Application metadata as written (producer may name the real slicer)
    printer_model: str  # the printer the file was sliced for, as written
    flavor: str  # G-code flavour / firmware as written (e.g. "Marlin", "klipper")
    print_time_s: float
    filament_used_mm: float  # total filament length, summed over tools
    filament_used_mm_per_extruder: list[float]  # as stated per tool / used filament (2+ values)
    filament_used_g: float
    filament_used_g_per_extruder: list[float]
    filament_used_mm3: float  # filament volume, summed over tools
    filament_used_mm3_per_extruder: list[float]
    layer_height_mm: float
    layer_count: int
    nozzle_diameter_mm: float
    bbox_mm: BoundingBox
    triangle_count: int  # meshes
    object_count: int  # 3MF: the build items (objects placed on the plate)
    plate_count: int  # 3MF (BambuStudio family): plates of the project / sliced plates
    unit: str  # 3MF: the model's declared unit attribute
    volume_mm3: float  # meshes, only when every mesh is closed
    surface_area_mm2: float  # meshes
    geometry_skipped: str  # 3MF: why box/area/volume are absent (memory bound)
    trailing_bytes: int  # binary STL: bytes after the last triangle (ignored)
    leading_bytes: int  # 3MF/UFP: bytes before the ZIP data (ignored)
    thumbnail: dict  # the stored preview: source, source_format, source_width/height, width, height


FIELDS: tuple[str, ...] = tuple(Metadata.__annotations__)
