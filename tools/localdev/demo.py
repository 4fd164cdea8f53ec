"""``make demo``: upload the real sample print files through the running files-api and tabulate the results.

Needs ``make dev`` running (it finds files-api through ``<data_dir>/run/stack.json``,
falling back to ``FILES_API_PORT``). Every file under ``../shared/samples``
(except MANIFEST.tsv and README.md) goes through ``POST /v1/files``; the demo
waits until the extractor has processed or failed each one, then prints one
row per file: status, format, producer and the main facts, or the reason it
failed or was rejected. The web page (``/``) lists the same files.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from .client import DEFAULT_SAMPLES, FilesApi, Upload, sample_files
from .config import LocalConfig
from .runner import read_stack_file

#: Longest cell of the "details" column before it is cut (terminal width).
DETAIL_WIDTH = 70


def _num(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    else:
        text = str(value)
    return f"{text}{unit}"


def facts(metadata: dict[str, Any]) -> str:
    """The headline facts of a metadata dict as one short string (``12 layers, 0.2 mm, 24m39s, 8.36 m``)."""
    parts = []
    if "print_time_s" in metadata:
        secs = int(metadata["print_time_s"])
        parts.append(f"{secs // 3600}h{secs % 3600 // 60:02d}m" if secs >= 3600 else f"{secs // 60}m{secs % 60:02d}s")
    if "layer_count" in metadata:
        parts.append(f"{metadata['layer_count']} layers")
    if "layer_height_mm" in metadata:
        parts.append(f"layer {_num(metadata['layer_height_mm'], ' mm')}")
    if "filament_used_mm" in metadata:
        parts.append(f"filament {_num(metadata['filament_used_mm'] / 1000, ' m')}")
    if "filament_used_g" in metadata:
        parts.append(_num(metadata["filament_used_g"], " g"))
    if "triangle_count" in metadata:
        parts.append(f"{metadata['triangle_count']} triangles")
    if "object_count" in metadata:
        parts.append(f"{metadata['object_count']} objects")
    if "unit" in metadata:
        parts.append(str(metadata["unit"]))
    return ", ".join(parts)


def _cut(text: str, width: int = DETAIL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(uploads: list[Upload], final: dict[str, dict[str, Any]]) -> str:
    """The result table: file, status, format, producer, facts or reason (one row per upload)."""
    rows = []
    for up in uploads:
        if up.rejected is not None:
            rows.append([up.path, f"rejected ({up.rejected.status})", "", "", _cut(up.rejected.detail)])
            continue
        assert up.file is not None
        view = final.get(up.file["id"], up.file)
        meta = view.get("metadata") or {}
        producer = meta.get("producer") or {}
        producer_text = " ".join(str(producer[k]) for k in ("name", "version") if k in producer)
        detail = facts(meta) if view["status"] == "processed" else (view.get("error") or "")
        rows.append([up.path, view["status"], meta.get("format", ""), _cut(producer_text, 28), _cut(detail)])
    return tabulate(rows, headers=["file", "status", "format", "producer", "facts / reason"], tablefmt="simple")


def files_api_url(cfg: LocalConfig) -> str:
    """The running files-api's base URL (``stack.json`` of the data folder, else ``FILES_API_PORT``)."""
    return files_api_urls(cfg)[0]


def files_api_urls(cfg: LocalConfig) -> tuple[str, str]:
    """The running files-api's public and ops base URLs (``stack.json``, else ``FILES_API_PORT``/``FILES_API_OPS_PORT``)."""
    try:
        described = read_stack_file(cfg.data_dir)
    except FileNotFoundError:
        return cfg.files_api_url, cfg.files_api_ops_url
    return described["files_api_url"], described.get("files_api_ops_url", cfg.files_api_ops_url)


def main(cfg: LocalConfig, *, samples: str | None = None, timeout: float = 180.0) -> int:
    """Run the demo; return 0 when every upload reached ``processed``/``failed`` or was rejected with a reason, else 1."""
    url, ops_url = files_api_urls(cfg)
    api = FilesApi(url, ops_url=ops_url)
    if not api.ready():
        print(f"localdev demo: files-api is not answering at {api.ready_url}: start the platform with `make dev` "
              "(in another terminal) and wait for its URLs", file=sys.stderr)
        return 1
    root = Path(samples) if samples else DEFAULT_SAMPLES
    paths = sample_files(root)
    started = time.monotonic()
    print(f"uploading {len(paths)} files from {root} to {url}/v1/files ...")
    uploads = api.upload_all(paths, root)
    ids = [u.file["id"] for u in uploads if u.file is not None]
    try:
        final = api.wait_final(ids, timeout)
    except TimeoutError as exc:
        print(f"localdev demo: {exc}", file=sys.stderr)
        return 1
    print(table(uploads, final))
    counts: dict[str, int] = {}
    for up in uploads:
        status = "rejected" if up.file is None else final[up.file["id"]]["status"]
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"\n{len(uploads)} files in {time.monotonic() - started:.1f}s: {summary}. The web page shows the same: {url}/")
    return 0
