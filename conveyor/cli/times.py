"""Times as people read them: relative ("3 min ago", "in 2 h") or, with `--absolute`, ISO 8601
in local time (`2026-12-01T23:40:12+00:00`)."""

from __future__ import annotations

import time
from datetime import datetime

from conveyor.times import MS_PER_S

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def shown(ms: int | None, absolute: bool, none: str = "-", now_ms: int | None = None) -> str:
    """The instant `ms` (epoch milliseconds) for a table; `none` when it is unset (0 or None)."""
    if not ms:
        return none
    if absolute:
        return datetime.fromtimestamp(ms / MS_PER_S).astimezone().isoformat(timespec="seconds")
    now = time.time() * MS_PER_S if now_ms is None else now_ms
    return relative((ms - now) / MS_PER_S)


def relative(seconds: float) -> str:
    """`seconds` from now (negative: in the past) in its largest whole unit."""
    size = abs(int(seconds))
    if size < 1:
        return "now"
    unit, count = next((name, size // step) for name, step in _UNITS if size >= step)
    return f"in {count} {unit}" if seconds > 0 else f"{count} {unit} ago"


def due(ms: int, absolute: bool, now_ms: int | None = None) -> str:
    """A time something is due (a repository's next check): "now" once it has passed."""
    now = time.time() * MS_PER_S if now_ms is None else now_ms
    if not absolute and ms <= now:
        return "now"
    return shown(ms, absolute, now_ms=now_ms)
