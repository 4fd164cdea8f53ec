"""The page at ``/``: upload print files and see what the extractor found in them, live.

Server-rendered HTML (Jinja, autoescaped) with one small script and one
stylesheet served by the app itself (``static/``; no build chain, no CDN):

- ``GET /`` -- the page: upload form (file chooser, drag and drop, several
  files, a progress bar per file, the server's problem ``detail`` in place
  when a file is refused), status filter, the table of files with their facts
  as columns, older pages by cursor.
- ``GET /ui/files`` -- the table part alone (same query parameters), which the
  script polls to turn ``pending`` rows into ``processed``/``failed`` without
  a reload.

Rows are rendered from the same dump as the API's file resource
(``FileSchema``), so a field the API gains (``thumbnail_url``) reaches the page
unchanged. Every response of this blueprint carries a Content-Security-Policy
allowing only the app's own scripts, styles, images and requests (no inline
script or style: ``CSP``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from pipeline_core.formats import EXTENSIONS

from . import repository
from .fastdump import FastDumper
from .problems import Problem
from .schemas import FileSchema, MAX_PAGE_SIZE

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")

#: Rows per page of the page (``?limit=`` may ask for 1..MAX_PAGE_SIZE).
PAGE_SIZE = 50
STATUSES = ("pending", "processed", "failed")
#: Only the app's own assets: scripts and styles from files (no inline code), images and
#: requests to the app itself, forms posting to it, no framing, no <base> rewriting, no plugins.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'")
#: Seconds browsers may keep the static assets (their URLs carry no version: keep it short).
STATIC_MAX_AGE = 300
_DUMP = FastDumper(FileSchema())
#: The endings uploads may have (pipeline_core.formats, the list files-api checks), for the page's hint.
ACCEPTED_ENDINGS = sorted(EXTENSIONS)
#: The file chooser's filter: browsers match the last suffix only (``.gcode.gz`` -> ``.gz``).
ACCEPT = ",".join(sorted({"." + ending.rsplit(".", 1)[1] for ending in EXTENSIONS}))


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint == "web.static":
        response.cache_control.max_age = STATIC_MAX_AGE
        response.cache_control.public = False
        response.cache_control.private = True
    return response


@dataclass(frozen=True)
class Row:
    """One file as the table shows it: the API's resource (``item``) and its facts as display text."""

    item: dict[str, Any]
    producer: str
    print_time: str
    print_time_title: str
    filament_m: str
    filament_g: str
    layers: str
    size: str
    uploaded: str
    details: list[tuple[str, str]]

    @property
    def version(self) -> str:
        """Changes whenever the row's content may change (the script replaces only changed rows)."""
        return f"{self.item.get('status')}|{self.item.get('updated_at')}|{self.item.get('thumbnail_url') or ''}"


def _args() -> tuple[str | None, str | None, int]:
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise Problem(400, f"status must be pending, processed or failed, not {status!r}")
    raw_limit = request.args.get("limit") or str(PAGE_SIZE)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise Problem(400, f"limit must be a whole number 1..{MAX_PAGE_SIZE}, not {raw_limit!r}")
    return status, request.args.get("cursor") or None, int(raw_limit)


def _page() -> dict[str, Any]:
    status, cursor, limit = _args()
    state = current_app.extensions["files_api"]
    with state.engine.connect() as conn:
        try:
            views, next_cursor = repository.list_page(conn, limit=limit, cursor=cursor, status=status)
        except repository.BadCursor as exc:
            raise Problem(400, str(exc)) from exc
    return {"rows": [row_for(_DUMP(v)) for v in views], "next_cursor": next_cursor, "status": status,
            "cursor": cursor, "limit": limit if limit != PAGE_SIZE else None}


@bp.get("/")
def index() -> str:
    """The page: upload form, status filter and the newest files (``?status=``, ``?cursor=``, ``?limit=``)."""
    state = current_app.extensions["files_api"]
    return render_template("index.html", bucket=state.bucket.name, max_upload_bytes=state.settings.max_upload_bytes,
                           statuses=STATUSES, endings=ACCEPTED_ENDINGS, accept=ACCEPT, **_page())


@bp.get("/ui/files")
def files_fragment() -> str:
    """The table of ``/`` alone (same parameters): what the page's script polls for live updates."""
    return render_template("_files.html", **_page())


# -- facts as display text -------------------------------------------------------------------------

DASH = "\u2014"


def row_for(item: dict[str, Any]) -> Row:
    """Display text of a file resource (``FileSchema`` dump); a fact the metadata lacks is a dash."""
    meta = item.get("metadata") or {}
    seconds = _number(meta.get("print_time_s"))
    return Row(
        item=item,
        producer=producer_text(meta.get("producer")),
        print_time=hours_minutes(seconds) if seconds is not None else DASH,
        print_time_title=f"{seconds:,.0f} s" if seconds is not None else "",
        filament_m=_fixed(meta.get("filament_used_mm"), 1000, 2, " m"),
        filament_g=_fixed(meta.get("filament_used_g"), 1, 1, " g"),
        layers=f"{meta['layer_count']:,}" if type(meta.get("layer_count")) is int else DASH,
        size=part_size(meta.get("bbox_mm")),
        uploaded=_timestamp(item.get("created_at")),
        details=list(metadata_rows(meta)),
    )


def hours_minutes(seconds: float) -> str:
    """``h:mm`` of a duration, rounded to the minute: 1479 s -> ``0:25``, 342521 s -> ``95:09``."""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60}:{minutes % 60:02d}"


def producer_text(producer: Any) -> str:
    """``Name version`` of the ``producer`` fact, or a dash."""
    if not isinstance(producer, dict) or not producer.get("name"):
        return DASH
    return " ".join(str(p) for p in (producer.get("name"), producer.get("version")) if p)


def part_size(bbox: Any) -> str:
    """``W x D x H`` mm from ``bbox_mm`` (max - min per axis); an axis the file does not state is a dash."""
    if not isinstance(bbox, dict):
        return DASH
    lo, hi = bbox.get("min") or [None] * 3, bbox.get("max") or [None] * 3
    dims = []
    for a, b in zip(lo, hi):
        a, b = _number(a), _number(b)
        dims.append(f"{b - a:.1f}" if a is not None and b is not None else DASH)
    if all(d == DASH for d in dims):
        return DASH
    return " \u00d7 ".join(dims)


#: Labels and units of the metadata fields (docs/metadata.md), in display order.
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "format": ("Format", ""),
    "producer": ("Producer", ""),
    "flavor": ("G-code flavour", ""),
    "print_time_s": ("Print time", ""),
    "filament_used_mm": ("Filament length", "mm"),
    "filament_used_g": ("Filament mass", "g"),
    "layer_height_mm": ("Layer height", "mm"),
    "layer_count": ("Layers", ""),
    "nozzle_diameter_mm": ("Nozzle diameter", "mm"),
    "bbox_mm": ("Bounding box", "mm"),
    "triangle_count": ("Triangles", ""),
    "object_count": ("Objects", ""),
    "unit": ("Model unit", ""),
    "volume_mm3": ("Volume", "mm\u00b3"),
    "surface_area_mm2": ("Surface area", "mm\u00b2"),
}


def metadata_rows(meta: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, value text) for every metadata field: known ones with units, any other one as ``key``."""
    for key, (label, unit) in FIELD_LABELS.items():
        if key in meta:
            yield label, _field_text(key, meta[key], unit)
    for key in sorted(k for k in meta if k not in FIELD_LABELS):
        yield key, _plain(meta[key])


def _field_text(key: str, value: Any, unit: str) -> str:
    if key == "producer":
        return producer_text(value)
    if key == "print_time_s" and _number(value) is not None:
        s = int(round(value))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d} ({value:,.0f} s)"
    if key == "filament_used_mm" and _number(value) is not None:
        return f"{value / 1000:,.3f} m ({value:,.1f} mm)"
    if key == "bbox_mm" and isinstance(value, dict):
        lo, hi = (", ".join(DASH if v is None else f"{v:g}" for v in value.get(k) or []) for k in ("min", "max"))
        return f"min ({lo}) max ({hi}) mm; size {part_size(value)} mm"
    if isinstance(value, float):
        text = f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = _plain(value)
    return f"{text} {unit}".strip()


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if value is None:
        return DASH
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _fixed(value: Any, divisor: float, digits: int, suffix: str) -> str:
    number = _number(value)
    return f"{number / divisor:,.{digits}f}{suffix}" if number is not None else DASH


def _timestamp(iso: Any) -> str:
    try:
        when = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso or "")
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")
