"""Points in time as documents carry them: epoch milliseconds (`*_ms`) and, beside each, the same
instant as ISO 8601 in UTC (`created_at_ms` -> `created_at`), for readers that are not scripts
doing arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

MS_PER_S = 1000
_MS_SUFFIX = "_ms"


def iso_utc(ms: int | None) -> str | None:
    """`2026-12-01T23:40:12.345Z`; None stays None (a time not yet known)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / MS_PER_S, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_times(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with an ISO 8601 field right after every `NAME_ms` field, at any depth.

    Every `*_ms` field of a document is a point in time (durations are in seconds, `*_s`), so
    one rule serves every document, on the command line and over HTTP alike.
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = _converted(value)
        if key.endswith(_MS_SUFFIX) and _is_instant(value):
            out[key.removesuffix(_MS_SUFFIX)] = iso_utc(value)
    return out


def _converted(value: Any) -> Any:
    if isinstance(value, dict):
        return with_times(value)
    if isinstance(value, list):
        return [_converted(item) for item in value]
    return value


def _is_instant(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))
