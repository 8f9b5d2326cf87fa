"""Durations as people and kubectl write them: 300, 300s, 5m, 1h30m, 1.5m."""

from __future__ import annotations

import re
from datetime import timedelta

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


_WINDOW = re.compile(r"^\s*([0-9]{1,4})\s*([hdw])\s*$")
_WINDOW_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_window(text: str) -> timedelta:
    """A stats window, `--since`: `30d`, `12h`, `8w`; anything else is refused."""
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"--since takes a number and h, d or w (e.g. 30d), not {text[:40]!r}")
    return int(match.group(1)) * _WINDOW_UNIT[match.group(2)]


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"
