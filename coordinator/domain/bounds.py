"""Range checks for numbers arriving from outside: each failure names the field (DESIGN §6.8)."""

from __future__ import annotations

from coordinator.config import MAX_ROW_ID
from coordinator.domain.errors import OutOfRangeError


def check_range(field: str, value: int, low: int, high: int) -> int:
    """`value` if low <= value <= high, else OutOfRangeError naming `field` and the range."""
    if not low <= value <= high:
        raise OutOfRangeError(f"{field} {value} is out of range ({low}..{high})")
    return value


def check_id(field: str, value: int) -> int:
    """A row id (a build's, a deployment's) as the store can look it up: 1..MAX_ROW_ID, so an id
    no column can hold is OutOfRangeError, not the database's own error."""
    return check_range(field, value, 1, MAX_ROW_ID)


def check_step_index(field: str, value: int, step_count: int | None) -> int:
    """A step index of an attempt with `step_count` steps (None: unknown, only checks >= 0)."""
    if step_count is None:
        return check_range(field, value, 0, 2**31 - 1)
    if not 0 <= value < step_count:
        last = f"0..{step_count - 1}" if step_count else "none: the attempt has no steps"
        raise OutOfRangeError(f"{field} {value} is out of range (steps of this attempt: {last})")
    return value
