"""What `on:` means (DESIGN §4.2): which pushes build, and when a schedule fires. Pure functions.

Branch and tag globs go through the matcher `when:` uses (`conveyor.pipeline.globs`), so one
pattern means the same in both keys. Cron expressions have the five classic fields (minute, hour,
day of month, month, day of week) and are read in UTC, so daylight saving never moves them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from conveyor.pipeline.globs import any_glob_matches
from conveyor.pipeline.model import Triggers

CRON_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")
CRON_HINT: Final = 'five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"'


def push_accepted(triggers: Triggers, *, branch: str | None, tag: str | None) -> bool:
    """Whether a new head of `branch` (or of `tag`) starts a build.

    A push names one ref: a branch or a tag, not both (ValueError). Neither: not a push, False.
    """
    if branch is not None and tag is not None:
        raise ValueError("a push is of a branch or of a tag, not both")
    if triggers.push is None:
        return False
    # Unlike `when:`, an empty list admits nothing: `push: {branches: [main]}` builds no tags.
    if tag is not None:
        return any_glob_matches(triggers.push.tags, tag)
    if branch is not None:
        return any_glob_matches(triggers.push.branches, branch)
    return False


def cron_problem(cron: str) -> str | None:
    """Why `cron` is not a schedule this format accepts (None: it is)."""
    # Loaded for a schedule only: `conveyor run` of a pipeline without one never needs it.
    from cronsim import CronSim, CronSimError

    fields = cron.split()
    if len(fields) != len(CRON_FIELDS):
        return f"expected {CRON_HINT}; got {len(fields)} field{'s' if len(fields) != 1 else ''}"
    try:
        CronSim(cron, _EPOCH)
    except CronSimError as exc:
        # The library names the field ("Bad day-of-month"); the text says which value.
        return f"invalid cron expression {cron!r}: {str(exc).lower()}"
    return None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def next_fire_ms(cron: str, after_ms: int) -> int:
    """The first time (epoch ms, UTC) `cron` fires strictly after `after_ms`.

    Fire times fall on whole minutes. Raises ValueError for an expression cron_problem refuses,
    or one with no fire time left before the calendar ends (year 9999).
    """
    from cronsim import CronSim

    problem = cron_problem(cron)
    if problem is not None:
        raise ValueError(problem)
    # Integer arithmetic: a float timestamp could round a millisecond onto the fire time.
    after = _EPOCH + timedelta(milliseconds=after_ms)
    try:
        fire = next(CronSim(cron, after))
    except (StopIteration, OverflowError):
        raise ValueError(f"cron expression {cron!r} never fires after {after_ms} ms") from None
    return int(fire.timestamp()) * 1000
