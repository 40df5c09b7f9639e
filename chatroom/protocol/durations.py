"""Durations as users type them (``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``) for /mute and
/ban, both ways."""

from __future__ import annotations

import re

DURATION_USAGE = "a duration is a number and a unit: 30s, 10m, 2h, 1d (or 1h30m)"
_DURATION = re.compile(r"(?:\d{1,7}[smhd])+")
_PART = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float | None:
    """Seconds in ``text`` (``30s``, ``10m``, ``2h``, ``1d``, ``1h30m``), None if it is not a
    duration or is zero."""
    text = text.lower()
    if not _DURATION.fullmatch(text):
        return None
    seconds = sum(int(n) * _UNIT[unit] for n, unit in _PART.findall(text))
    return float(seconds) or None


def format_duration(seconds: float) -> str:
    """``seconds`` as :func:`parse_duration` reads it back: ``90`` -> ``1m30s``."""
    left = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "1s"
