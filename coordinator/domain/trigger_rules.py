"""The pipeline's `on:` as the watcher asks it: which pushes it builds, its schedules, and when a
cron fires next. One seam, so the watcher is tested with a driven clock and real rules."""

from __future__ import annotations

from conveyor.pipeline import Pipeline


def push_accepted(pipeline: Pipeline, branch: str | None, tag: str | None) -> bool:
    """Whether a push of `branch` (or of `tag`) starts a build of `pipeline`."""
    return True


def schedules(pipeline: Pipeline) -> list[tuple[str, str]]:
    """The pipeline's schedule entries as (cron, branch); branch "" is the default branch."""
    return []


def next_fire_ms(cron: str, after_ms: int) -> int:
    """The first time after `after_ms` (UTC, ms) that `cron` fires."""
    raise ValueError(f"cron {cron!r}: schedules are not supported")
