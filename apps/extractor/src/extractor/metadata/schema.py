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

    format: str  # "gcode" | "bgcode" | "stl" | "3mf" (pipeline_core.formats.FileFormat)
    producer: Producer
    flavor: str  # G-code flavour / firmware as written (e.g. "Marlin", "klipper")
    print_time_s: float
    filament_used_mm: float  # total filament length, summed over tools
    filament_used_g: float
    layer_height_mm: float
    layer_count: int
    nozzle_diameter_mm: float
    bbox_mm: BoundingBox
    triangle_count: int  # meshes
    object_count: int  # 3MF: <object> resources in the model part
    unit: str  # 3MF: the model's declared unit attribute
    volume_mm3: float  # meshes, only when every mesh is closed
    surface_area_mm2: float  # meshes


FIELDS: tuple[str, ...] = tuple(Metadata.__annotations__)
