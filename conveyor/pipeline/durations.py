"""Durations as written in pipelines: `90`, `90s`, `10m`, `1h30m`, `2h`, `1.5s`."""

from __future__ import annotations

import math
import re

from conveyor.pipeline.issues import quote
from conveyor.pipeline.limits import MAX_DURATION_S

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_DURATION_RE = re.compile(
    rf"(?P<bare>{_NUMBER})|(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m)?(?:(?P<s>{_NUMBER})s)?"
)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}

HINT = "use e.g. 90s, 10m, 1h30m"


class DurationError(ValueError):
    """A duration that is malformed, not positive, or longer than MAX_DURATION_S."""


def parse_duration(value: str | int | float) -> float:
    """Return `value` in seconds; a bare number means seconds. Raises DurationError."""
    if isinstance(value, bool):
        raise DurationError(f"invalid duration {quote(value)} ({HINT})")
    seconds = float(value) if isinstance(value, int | float) else _parse_text(value)
    if math.isnan(seconds) or seconds <= 0:
        raise DurationError(f"duration must be greater than zero, got {quote(value)}")
    if seconds > MAX_DURATION_S:
        raise DurationError(f"duration {quote(value)} is longer than the limit of 7 days")
    return seconds


def _parse_text(text: str) -> float:
    match = _DURATION_RE.fullmatch(text)
    # The all-optional unit pattern also matches "", which is not a duration.
    if match is None or not text:
        raise DurationError(f"invalid duration {quote(text)} ({HINT})")
    if match["bare"] is not None:
        return float(match["bare"])
    return sum(float(match[unit]) * factor for unit, factor in _UNIT_SECONDS.items() if match[unit])


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration for display: 5400 -> "1h30m", 1.5 -> "1.5s"."""
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n)
