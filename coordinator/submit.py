"""Turns a validated pipeline into the jobs the store keeps (steps resolved at submission)."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.pipeline import Pipeline, resolve_steps
from coordinator.records import JobSpecRecord, NewJob, StepSpecRecord


def jobs_from_pipeline(pipeline: Pipeline, env_overrides: Mapping[str, str]) -> list[NewJob]:
    jobs = []
    for job in pipeline.jobs:
        steps = tuple(
            StepSpecRecord(step.name, step.image, step.run, dict(step.env), step.timeout_s)
            for step in resolve_steps(pipeline, job, env_overrides)
        )
        spec = JobSpecRecord(steps, job.timeout_s, job.retry.max, tuple(job.retry.when))
        jobs.append(NewJob(job.name, tuple(job.needs), dict(job.labels), spec))
    return jobs
