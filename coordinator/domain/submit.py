"""Turns a validated pipeline into the jobs the store keeps (steps resolved at submission)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict

from conveyor.pipeline import Pipeline, resolve_steps
from coordinator.config import MAX_JOB_SPEC_BYTES
from coordinator.domain.records import JobSpecRecord, NewJob, StepSpecRecord


def jobs_from_pipeline(pipeline: Pipeline, env_overrides: Mapping[str, str]) -> list[NewJob]:
    jobs = []
    for job in pipeline.jobs:
        steps = tuple(
            StepSpecRecord(step.name, step.image, step.run, dict(step.env), step.timeout_s)
            for step in resolve_steps(pipeline, job, env_overrides)
        )
        spec = JobSpecRecord(steps, job.timeout_s, job.retry.max, tuple(job.retry.when))
        size = encoded_size(spec)
        if size > MAX_JOB_SPEC_BYTES:
            # Env is merged into every step, so a modest pipeline can resolve into a job too
            # large to hand to an agent in one message.
            raise ValueError(
                f"jobs.{job.name}: too large once the env is merged into its {len(steps)} steps "
                f"({size / 1e6:.1f} MB > {MAX_JOB_SPEC_BYTES / 1e6:.1f} MB); shrink the env"
            )
        jobs.append(NewJob(job.name, tuple(job.needs), dict(job.labels), spec))
    return jobs


def encoded_size(spec: JobSpecRecord) -> int:
    """About the bytes the job takes once stored or sent: its JSON form, as the store keeps it."""
    return len(json.dumps(asdict(spec), sort_keys=True).encode())
