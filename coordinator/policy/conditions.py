"""`when:` conditions (DESIGN §4.1), decided once when a build is created: pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.pipeline.globs import any_glob_matches
from conveyor.pipeline.model import Condition


@dataclass(frozen=True)
class BuildContext:
    """What started a build (an event from BUILD_EVENTS) and on which branch or tag, if any."""

    event: str
    branch: str | None = None
    tag: str | None = None


MANUAL = BuildContext("manual")
"""A `conveyor run` build with no branch or tag known."""


def _matches(patterns: Sequence[str], value: str | None) -> bool:
    # An empty list admits anything, even nothing; a non-empty one needs a value that fits.
    if not patterns:
        return True
    return value is not None and any_glob_matches(patterns, value)


def condition_admits(condition: Condition | None, context: BuildContext) -> bool:
    """Whether a job with `condition` runs in a build with `context`: every list must match."""
    if condition is None:
        return True
    return (
        _matches(condition.branch, context.branch)
        and _matches(condition.tag, context.tag)
        and _matches(condition.event, context.event)
    )


def condition_message(condition: Condition, context: BuildContext) -> str:
    """Why the condition is false, in words for `show`."""
    parts = []
    for key, patterns, value in (
        ("branch", condition.branch, context.branch),
        ("tag", condition.tag, context.tag),
        ("event", condition.event, context.event),
    ):
        if not _matches(patterns, value):
            shown = value if value is not None else "none"
            parts.append(f"{key} {shown} is not one of {', '.join(patterns)}")
    return "not run: " + "; ".join(parts)
