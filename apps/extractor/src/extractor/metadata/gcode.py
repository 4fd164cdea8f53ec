"""Text G-code (``.gcode``, ``.gco``, ``.g``) and gzip-compressed ``.gcode.gz``.

Slicers state their facts in comments at the head of the file (Cura,
BambuStudio, ideaMaker's settings) and/or the tail (PrusaSlicer/Slic3r/Orca
summary and config block, ideaMaker and Simplify3D totals). The body between
is moves. So extraction reads a bounded window:

* plain files: the first ``HEAD_BYTES`` and the last ``TAIL_BYTES`` by seek
  (a file no larger than both together is read whole, once);
* gzip (and a ZIP member: the G-code inside a UFP or ``.gcode.3mf``,
  ``extract_gcode_stream``): a compressed stream cannot seek, so the head is
  stream-decompressed; when
  the producer found there states everything in its header
  (``gcode_facts.HEADER_COMPLETE_PRODUCERS``: CuraEngine, BambuStudio) reading
  stops there. Otherwise the stream is decompressed to its end keeping only a
  rolling ``TAIL_BYTES`` window: memory stays bounded, time grows with the
  size (capped at ``GZIP_MAX_DECOMPRESSED_BYTES``; past that the tail facts
  are absent). That is the trade-off of a format without random access.

Layer counting: when the file states no layer count, the producer's own
layer-change marker (``GcodeFacts.layer_marker``) is counted, but only for a
file of at most ``LAYER_SCAN_MAX_BYTES`` (uncompressed): a chunked byte scan,
bounded memory. Larger files leave ``layer_count`` absent rather than scan.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ExtractionError
from .gcode_facts import GcodeFacts
from .thumbnail import gcode_thumbnails

HEAD_BYTES = 512 * 1024
TAIL_BYTES = 512 * 1024
#: Largest (uncompressed) file whose layer-change markers are counted when no
#: layer count is stated. A byte scan runs at several hundred MB/s.
LAYER_SCAN_MAX_BYTES = 64 * 1024 * 1024
#: Decompression stops here for a gzip G-code (decompression-bomb guard).
GZIP_MAX_DECOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024

_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_BGCODE_MAGIC = b"GCDE"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
#: A line that is G-code: a comment, or a G/M/T word (optionally N-numbered).
_GCODE_LINE = re.compile(rb"^[ \t]*(?:;|\(|(?:N\d+[ \t]*)?[GMT]\d)", re.MULTILINE)


@dataclass
class _Window:
    """What was read of the (uncompressed) G-code text."""

    head: bytes
    tail: bytes  # empty when ``whole`` or not read
    whole: bool  # head holds the entire file
    size: int | None  # uncompressed size, when known
    layer_markers: int | None = None  # counted marker lines, when scanned


def extract_gcode(path: Path, *, gzipped: bool) -> dict:
    """Metadata of a text G-code file (see the module docstring for what is read).

    Args:
        path: the file on disk.
        gzipped: the file is a ``.gcode.gz`` (gzip-compressed G-code).

    Returns:
        ``{"format": "gcode", ...}`` with the fields of ``schema.Metadata``
        that the file states.

    Raises:
        ExtractionError: empty file, Git LFS pointer, binary G-code or gzip
            under a text name (or not gzip under ``.gz``), corrupt gzip stream,
            or no G-code in the first ``HEAD_BYTES``.
    """
    facts = GcodeFacts()
    window = _read_gzip(path, facts) if gzipped else _read_plain(path, facts)
    return _result(facts, window, path.name)


def extract_gcode_stream(fh: BinaryIO, name: str) -> dict:
    """Metadata of text G-code read from a forward-only stream (a ZIP member:
    the plate G-code of a ``.gcode.3mf``, the ``/3D/model.gcode`` of a UFP).

    Read like a gzip stream (module docstring): the head, then - unless the
    producer states everything there - the rest with a rolling tail window.
    Memory stays bounded whatever the size.

    Args:
        fh: the decompressed G-code, readable from its first byte.
        name: how the G-code is named in messages (``'x.ufp'!/3D/model.gcode``).

    Raises:
        ExtractionError: empty, not text G-code, corrupt stream.
    """
    facts = GcodeFacts()
    window = _read_stream(fh, name, facts, gzipped=False)
    return _result(facts, window, name)


def _result(facts: GcodeFacts, window: _Window, name: str) -> dict:
    out: dict = {"format": "gcode"}
    out.update(facts.result(whole_file_seen=window.whole))
    if "layer_count" not in out and window.layer_markers:
        out["layer_count"] = window.layer_markers
    thumbnails = gcode_thumbnails(window.head.removeprefix(_UTF8_BOM).decode("utf-8", errors="replace"), name)
    if thumbnails:
        out["_thumbnails"] = thumbnails
    return out


# ---- plain files ---------------------------------------------------------------


def _read_plain(path: Path, facts: GcodeFacts) -> _Window:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= HEAD_BYTES + TAIL_BYTES:
            head = fh.read()
            _check_text(head, path.name, gzipped=False)
            window = _Window(head=head, tail=b"", whole=True, size=size)
        else:
            head = _cut_at_last_newline(fh.read(HEAD_BYTES))
            _check_text(head, path.name, gzipped=False)
            fh.seek(size - TAIL_BYTES)
            tail = _drop_partial_first_line(fh.read(TAIL_BYTES))
            window = _Window(head=head, tail=tail, whole=False, size=size)
        _feed(facts, window)
        if _needs_layer_scan(facts, window):
            marker = facts.layer_marker()
            if window.whole:
                window.layer_markers = len(marker.findall(window.head))
            else:
                fh.seek(0)
                window.layer_markers = _count_lines(fh, marker)
    return window


def _needs_layer_scan(facts: GcodeFacts, window: _Window) -> bool:
    if facts.layer_count is not None or (facts.legacy_layer_counts and window.whole):
        return False
    if facts.layer_marker() is None:
        return False
    return window.size is not None and window.size <= LAYER_SCAN_MAX_BYTES


def _count_lines(fh: BinaryIO, marker: re.Pattern[bytes]) -> int:
    """Count ``marker`` lines in the rest of ``fh``, in line-aligned chunks of 1 MiB."""
    count = 0
    carry = b""
    while True:
        chunk = fh.read(_CHUNK)
        if not chunk:
            break
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        count += len(marker.findall(data, 0, cut))
        carry = data[cut:]
    if carry:
        count += len(marker.findall(carry))
    return count


# ---- gzip ------------------------------------------------------------------------


def _read_gzip(path: Path, facts: GcodeFacts) -> _Window:
    with path.open("rb") as raw:
        magic = raw.read(2)
    if magic != _GZIP_MAGIC:
        raise ExtractionError(
            f"{path.name!r} is named .gcode.gz but is not gzip-compressed "
            f"(first bytes {magic!r}, expected 1f 8b)"
        )
    try:
        with gzip.open(path, "rb") as fh:
            return _read_stream(fh, path.name, facts, gzipped=True)
    except (OSError, EOFError, zlib.error) as exc:
        raise ExtractionError(f"gzip stream of {path.name!r} is corrupt or truncated: {exc}") from exc


def _read_stream(fh: BinaryIO, name: str, facts: GcodeFacts, *, gzipped: bool) -> _Window:
    """Read G-code from a forward-only stream (gzip, ZIP member): see the module docstring."""
    first = _read_full(fh, HEAD_BYTES)
    if len(first) < HEAD_BYTES or not _read_full(fh, 0, peek=True):
        _check_text(first, name, gzipped=gzipped)
        window = _Window(head=first, tail=b"", whole=True, size=len(first))
        _feed(facts, window)
        if _needs_layer_scan(facts, window):
            window.layer_markers = len(facts.layer_marker().findall(first))
        return window
    head = _cut_at_last_newline(first)
    _check_text(head, name, gzipped=gzipped)
    head_facts = GcodeFacts()
    head_facts.feed_text(head.removeprefix(_UTF8_BOM).decode("utf-8", errors="replace"))
    if head_facts.header_complete():
        window = _Window(head=head, tail=b"", whole=False, size=None)
        _feed(facts, window)
        return window
    window = _stream_rest(fh, head, first[len(head) :], head_facts.layer_marker())
    _feed(facts, window)
    return window


def _read_full(fh: BinaryIO, size: int, *, peek: bool = False) -> bytes:
    """``size`` bytes (fewer only at the end); with ``peek``, whether a byte is left.

    ``peek`` reads one byte ahead and keeps it in ``fh``'s pushback, which
    gzip and ZIP member streams provide (``peek``).
    """
    if peek:
        return fh.peek(1)[:1]  # type: ignore[attr-defined]
    chunks = []
    left = size
    while left > 0:
        chunk = fh.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _stream_rest(
    fh: BinaryIO, head: bytes, rest: bytes, marker: re.Pattern[bytes] | None
) -> _Window:
    """Decompress to the end keeping a rolling tail window; count ``marker`` lines.

    ``head`` ends at a line end; ``rest`` is what was decompressed after it.
    """
    markers = len(marker.findall(head)) if marker is not None else 0
    total = len(head)
    tail = bytearray()
    trimmed = False
    carry = b""
    capped = False
    chunk = rest
    while chunk:
        total += len(chunk)
        tail += chunk
        if len(tail) > 2 * TAIL_BYTES:
            del tail[: len(tail) - TAIL_BYTES]
            trimmed = True
        if marker is not None:
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            markers += len(marker.findall(data, 0, cut))
            carry = data[cut:]
        if total >= GZIP_MAX_DECOMPRESSED_BYTES:
            capped = True
            break
        chunk = fh.read(_CHUNK)
    if capped:
        # facts at the end of a stream this large stay absent (see module doc)
        return _Window(head=head, tail=b"", whole=False, size=None)
    if marker is not None and carry:
        markers += len(marker.findall(carry))
    # untrimmed, the tail is everything after the head: the whole file was seen
    tail_bytes = _drop_partial_first_line(bytes(tail[-TAIL_BYTES:])) if trimmed else bytes(tail)
    window = _Window(head=head, tail=tail_bytes, whole=not trimmed, size=total)
    if marker is not None and total <= LAYER_SCAN_MAX_BYTES:
        window.layer_markers = markers
    return window


# ---- shared ----------------------------------------------------------------------


def _feed(facts: GcodeFacts, window: _Window) -> None:
    facts.feed_text(window.head.removeprefix(_UTF8_BOM).decode("utf-8", errors="replace"))
    if window.tail:
        facts.feed_text(window.tail.decode("utf-8", errors="replace"))


def _check_text(head: bytes, name: str, *, gzipped: bool) -> None:
    """Reject content that is not text G-code, naming what it is instead."""
    what = "decompressed content of " if gzipped else ""
    head = head.removeprefix(_UTF8_BOM)
    if not head:
        raise ExtractionError(f"{what}{name!r} is empty (0 bytes): no G-code")
    if head.startswith(_LFS_POINTER):
        size = re.search(rb"^size (\d+)", head, re.MULTILINE)
        stated = f" (the real file, {int(size.group(1))} bytes, is in LFS storage)" if size else ""
        raise ExtractionError(f"{what}{name!r} is a Git LFS pointer, not G-code{stated}")
    if head.startswith(_BGCODE_MAGIC):
        raise ExtractionError(
            f"{what}{name!r} is binary G-code (starts with the 'GCDE' magic); name it .bgcode"
        )
    if head.startswith(_GZIP_MAGIC):
        raise ExtractionError(f"{what}{name!r} is gzip-compressed; name it .gcode.gz")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise ExtractionError(f"{what}{name!r} is binary, not text G-code (NUL byte at offset {nul})")
    if not _GCODE_LINE.search(head):
        raise ExtractionError(
            f"{what}{name!r} contains no G-code command or comment in its first {len(head)} bytes"
        )


def _cut_at_last_newline(data: bytes) -> bytes:
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else data


def _drop_partial_first_line(data: bytes) -> bytes:
    cut = data.find(b"\n")
    return data[cut + 1 :] if cut >= 0 else b""
