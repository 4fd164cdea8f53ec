"""Parsing of the value notations slicers write: numbers, lists, durations.

All parsers are strict: a value that is not what it claims to be gives
``None`` (the fact is then absent), never a guess.
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

#: Duration units as slicers spell them -> seconds.
_DURATION_UNITS = {
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)")
_CLOCK = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")


def parse_number(text: str) -> float | None:
    """``text`` as a finite float (``"0.2"``, ``".4"``, ``"1e-3"``), else ``None``.

    A trailing unit or comment is not accepted: ``"0.2mm"`` gives ``None``.
    """
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def parse_number_list(text: str, separators: str = ",;") -> list[float] | None:
    """A list such as ``"0.4,0.4,0.4"`` or ``"400.85, 0, 98.63"``.

    Returns ``None`` when any element is not a number (so a half-parsable
    list is not silently shortened).
    """
    parts = re.split("[" + re.escape(separators) + "]", text)
    values = [parse_number(p) for p in parts]
    if not values or any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


def parse_duration(text: str) -> float | None:
    """A written duration in seconds.

    Accepts the notations slicers use: ``"1d 2h 3m 4s"`` (PrusaSlicer,
    Orca, Bambu), ``"37 minutes"`` / ``"1 hour 5 minutes"`` (legacy Cura),
    ``"0 hours 42 minutes"`` (Simplify3D), ``"332.83 minutes"`` (KISSlicer),
    ``"40m:36s"``, ``"1:20:36"`` (h:mm:ss), and a bare number of seconds
    (``"1835"``, ideaMaker). Anything else gives ``None``.
    """
    text = text.strip().rstrip(".")
    if not text:
        return None
    bare = parse_number(text)
    if bare is not None:
        return bare if bare >= 0 else None
    clock = _CLOCK.match(text)
    if clock:
        h, m, s = clock.groups()
        return int(h) * 3600 + int(m) * 60 + float(s)
    total = 0.0
    consumed = 0
    for match in _DURATION_PART.finditer(text):
        unit = match.group(2).lower()
        if unit not in _DURATION_UNITS:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        consumed += 1
    # Everything except the parts and separators (space, colon, comma) must be gone.
    rest = _DURATION_PART.sub("", text)
    if consumed == 0 or rest.strip(" :,"):
        return None
    return total


def split_version(text: str) -> tuple[str, str | None]:
    """Split ``"Cura_SteamEngine 4.10.0"`` into ``("Cura_SteamEngine", "4.10.0")``.

    The version is the last whitespace-separated token when it starts with a
    digit (optionally after ``v``/``V``, which is dropped: Creality Print
    writes ``V7.0.1``). Without such a token the whole text is the name.
    """
    text = text.strip()
    match = re.fullmatch(r"(.+?)[\s_-]+[vV]?(\d[\w.+-]*)", text)
    if match:
        return match.group(1).strip(), match.group(2)
    return text, None
