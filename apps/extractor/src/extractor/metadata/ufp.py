"""UFP (Ultimaker Format Package): Cura's print job package for Ultimaker printers.

An OPC ZIP package (https://github.com/Ultimaker/libCharon, ``UFPWriter``):
the G-code is the target of the package relationship of type
``http://schemas.ultimaker.org/package/2018/relationships/gcode``
(``/3D/model.gcode``), the preview the package thumbnail relationship
(``/Metadata/thumbnail.png``). Cura writes member names with a leading slash;
``package.Package`` finds parts either way.

The facts are those of the embedded G-code header (``gcode.extract_gcode_stream``:
streamed, bounded memory), with ``format`` ``"ufp"``.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ExtractionError
from .gcode import extract_gcode_stream
from .package import THUMBNAIL_RELATIONSHIP, Package
from .thumbnail import Candidate

GCODE_RELATIONSHIP = "http://schemas.ultimaker.org/package/2018/relationships/gcode"
DEFAULT_GCODE_PART = "/3D/model.gcode"
DEFAULT_THUMBNAIL_PART = "/Metadata/thumbnail.png"


def extract_ufp(path: Path) -> dict:
    """Metadata of a UFP package: ``{"format": "ufp", ...}`` from its G-code.

    Raises:
        ExtractionError: not a ZIP archive, no G-code part, the G-code part is
            not text G-code.
    """
    with Package(path, "UFP") as package:
        rels = package.relationships()
        targets = [target for kind, target in rels if kind == GCODE_RELATIONSHIP] or [DEFAULT_GCODE_PART]
        part = next((t for t in targets if package.has(t)), None)
        if part is None:
            raise ExtractionError(
                f"{path.name!r}: no G-code in the UFP package (no {DEFAULT_GCODE_PART} part, "
                f"no relationship of type {GCODE_RELATIONSHIP})"
            )
        with package.open(part) as stream:
            out = extract_gcode_stream(stream, f"{path.name}!{part if part.startswith('/') else '/' + part}")
        out["format"] = "ufp"
        thumbnails = list(out.pop("_thumbnails", []))
        pictures = [t for kind, t in rels if kind == THUMBNAIL_RELATIONSHIP] + [DEFAULT_THUMBNAIL_PART]
        for picture in pictures:
            if package.has(picture):
                thumbnails.insert(0, Candidate(package.read(picture), "png", picture.lstrip("/")))
                break
        if thumbnails:
            out["_thumbnails"] = thumbnails
        if package.leading_bytes:
            out["leading_bytes"] = package.leading_bytes
        return out
