"""The pipeline's `on:` as the watcher asks it: which pushes it builds, its schedules, and when a
cron fires next (`conveyor.pipeline.triggers`). One seam, so the watcher can be driven by a
clock of the test's own."""

from __future__ import annotations

from conveyor.pipeline import Pipeline
from conveyor.pipeline import triggers as on


def push_accepted(pipeline: Pipeline, branch: str | None, tag: str | None) -> bool:
    """Whether a push of `branch` (or of `tag`) starts a build of `pipeline`."""
    return on.push_accepted(pipeline.on, branch=branch, tag=tag)


def schedules(pipeline: Pipeline) -> list[tuple[str, str]]:
    """The pipeline's schedule entries as (cron, branch); branch "" is the default branch."""
    return [(entry.cron, entry.branch or "") for entry in pipeline.on.schedules]


def next_fire_ms(cron: str, after_ms: int) -> int:
    """The first time after `after_ms` (UTC, ms) that `cron` fires."""
    return on.next_fire_ms(cron, after_ms)
