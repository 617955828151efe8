"""Which builds a listing keeps, from what a client sends: checked before any query runs."""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.states import BuildStatus
from coordinator.config import MAX_REF_NAME_BYTES
from coordinator.domain.records import BuildFilter

EVERY_BUILD = BuildFilter()
_STATES = ", ".join(status.value for status in BuildStatus)


def build_filter(statuses: Iterable[str], name: str = "", branch: str = "") -> BuildFilter:
    """The filter for these wire values ("" keeps all); ValueError naming the field for a state
    that is not a build's or a name longer than any build can carry."""
    chosen: dict[BuildStatus, None] = {}
    for text in statuses:
        try:
            chosen[BuildStatus(text)] = None
        except ValueError:
            raise ValueError(f"status: unknown build state {text[:40]!r} (use {_STATES})") from None
    return BuildFilter(
        statuses=tuple(chosen),
        name=_text("name", name),
        branch=_text("branch", branch),
    )


def _text(field: str, value: str) -> str | None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_REF_NAME_BYTES:
        raise ValueError(f"{field}: longer than {MAX_REF_NAME_BYTES} bytes")
    return value or None
