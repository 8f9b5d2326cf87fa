"""Durations as people and kubectl write them: 300, 300s, 5m, 1h30m, 1.5m."""

from __future__ import annotations

import re

from bot.errors import InvalidInput

# ASCII digits only: `\d` also matches '٣', which float() reads as 3.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|m|s|ms)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
#: A week: longer is a typo, and 400 digits would make an infinite float.
MAX_SECONDS = 7 * 24 * 3600.0


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number is seconds. Raises InvalidInput otherwise."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = _PART.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise InvalidInput(f"{text[:40]!r} is not a duration: write it like 90s, 5m or 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidInput(f"{text!r} is not a duration greater than zero")
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"{text[:40]!r} is longer than a week: give at most 168h")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"
