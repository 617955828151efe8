"""Range checks for numbers arriving from outside: each failure names the field (DESIGN §6.8)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from conveyor.pipeline import label_name_problem, label_value_problem
from coordinator.config import MAX_AGENT_CAPACITY, MAX_AGENT_LABELS, MAX_AGENT_NAME_CHARS
from coordinator.domain.errors import OutOfRangeError


class RegistrationError(ValueError):
    """A registration whose name or labels no agent may have; the message names the field."""


def check_range(field: str, value: int, low: int, high: int) -> int:
    """`value` if low <= value <= high, else OutOfRangeError naming `field` and the range."""
    if not low <= value <= high:
        raise OutOfRangeError(f"{field} {value} is out of range ({low}..{high})")
    return value


def check_step_index(field: str, value: int, step_count: int | None) -> int:
    """A step index of an attempt with `step_count` steps (None: unknown, only checks >= 0)."""
    if step_count is None:
        return check_range(field, value, 0, 2**31 - 1)
    if not 0 <= value < step_count:
        last = f"0..{step_count - 1}" if step_count else "none: the attempt has no steps"
        raise OutOfRangeError(f"{field} {value} is out of range (steps of this attempt: {last})")
    return value


def check_registration(
    name: str, labels: Mapping[str, str], capacity: int, running: Sequence[object]
) -> None:
    """An agent's name, labels and capacity as DESIGN §6.8 bounds them."""
    if not name:
        raise RegistrationError("name: an agent needs a name")
    if len(name) > MAX_AGENT_NAME_CHARS:
        raise RegistrationError(f"name: too long ({len(name)} > {MAX_AGENT_NAME_CHARS} characters)")
    if not name.isprintable():
        raise RegistrationError(f"name {name!r}: contains control or format characters")
    if len(labels) > MAX_AGENT_LABELS:
        raise RegistrationError(f"labels: too many ({len(labels)} > {MAX_AGENT_LABELS})")
    for key, value in labels.items():
        problem = label_name_problem(key) or label_value_problem(value)
        if problem is not None:
            raise RegistrationError(f"labels: {problem}")
    check_range("capacity", capacity, 1, MAX_AGENT_CAPACITY)
    if len(running) > MAX_AGENT_CAPACITY:
        raise OutOfRangeError(f"running: too many attempts ({len(running)} > {MAX_AGENT_CAPACITY})")
