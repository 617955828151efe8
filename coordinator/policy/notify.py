"""Outgoing notifications' rules, as pure functions: when a failed try is tried again, and what
commit status a build's event is on a forge."""

from __future__ import annotations

import random
from collections.abc import Callable

from conveyor.states import BuildStatus

Uniform = Callable[[float, float], float]


def retry_delay_s(
    tries: int,
    *,
    initial_s: float,
    max_s: float,
    jitter: float,
    uniform: Uniform = random.uniform,
) -> float:
    """The wait after the `tries`-th failed try in a row (≥ 1): `initial_s` doubling per try up
    to `max_s`, less a random part of up to `jitter` of it (never longer than the doubling, so
    never past `max_s`; never under `1 - jitter` of it)."""
    base = min(max_s, initial_s * 2.0 ** min(tries - 1, 62))
    return base * (1.0 - uniform(0.0, jitter))


def gives_up(tries: int, max_tries: int) -> bool:
    """Whether an event that failed `tries` times is given up (no try after the last)."""
    return tries >= max_tries


# Forges' commit states (the Gitea and GitHub statuses API): a finished build is its result; a
# canceled one is an error (nothing was judged); a build waiting at a gate is still pending.
_COMMIT_STATES = {
    BuildStatus.SUCCEEDED: "success",
    BuildStatus.FAILED: "failure",
    BuildStatus.CANCELED: "error",
}


def commit_state(status: BuildStatus, *, at_gate: bool) -> str | None:
    """The commit status for a build event; None when the build's status says none."""
    if at_gate:
        return "pending"
    return _COMMIT_STATES.get(status)
