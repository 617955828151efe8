"""Turns a validated pipeline into the jobs the store keeps (steps resolved at submission)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict

from conveyor.pipeline import PRIVILEGED_LABEL, Pipeline, reserved_env_problem, resolve_steps
from conveyor.pipeline.model import CONCURRENCY_ORDERS, JobDef
from coordinator.config import (
    MAX_ENV_NAME_BYTES,
    MAX_ENV_OVERRIDES,
    MAX_ENV_OVERRIDES_BYTES,
    MAX_ENV_VALUE_BYTES,
    MAX_JOB_SPEC_BYTES,
    MAX_REF_NAME_BYTES,
)
from coordinator.domain.delivery_records import JobDelivery
from coordinator.domain.records import GateSpec, JobSpecRecord, NewJob, StepSpecRecord
from coordinator.policy.conditions import (
    MANUAL,
    BuildContext,
    condition_admits,
    condition_message,
)

# The rule `conveyor run --env` applies, and the pipeline format's for `env:` names.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvError(ValueError):
    """Env overrides the server refuses; the message names the variable."""


def _utf8_size(field: str, text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise EnvError(f"{field}: not valid Unicode (a lone surrogate?)") from None


def check_env_overrides(env: Mapping[str, str]) -> None:
    """Env overrides as the CLI accepts them: EnvError naming the first one that is not."""
    if len(env) > MAX_ENV_OVERRIDES:
        raise EnvError(f"env: too many variables ({len(env)} > {MAX_ENV_OVERRIDES})")
    total = 0
    for name, value in env.items():
        shown = json.dumps(name[:80])
        name_size = _utf8_size(f"env name {shown}", name)
        if name_size > MAX_ENV_NAME_BYTES:
            raise EnvError(
                f"env name {shown}...: too long ({name_size} > {MAX_ENV_NAME_BYTES} bytes)"
            )
        if not ENV_NAME.fullmatch(name):
            raise EnvError(
                f"env name {shown}: invalid (use letters, digits and '_', not starting with a "
                "digit; no '=', not empty)"
            )
        reserved = reserved_env_problem(name)
        if reserved is not None:
            raise EnvError(f"env name {shown}: {reserved}")
        value_size = _utf8_size(f"env.{name}", value)
        if value_size > MAX_ENV_VALUE_BYTES:
            raise EnvError(
                f"env.{name}: value too long ({value_size} > {MAX_ENV_VALUE_BYTES} bytes)"
            )
        if "\0" in value:
            raise EnvError(f"env.{name}: value contains a NUL character")
        total += name_size + value_size
    if total > MAX_ENV_OVERRIDES_BYTES:
        raise EnvError(f"env: too large in all ({total} > {MAX_ENV_OVERRIDES_BYTES} bytes)")


def build_context(branch: str, tag: str) -> BuildContext:
    """A `conveyor run` build's context from what the client says it builds ("" for none)."""
    for field, value in (("branch", branch), ("tag", tag)):
        size = _utf8_size(field, value)
        if size > MAX_REF_NAME_BYTES:
            raise ValueError(f"{field}: too long ({size} > {MAX_REF_NAME_BYTES} bytes)")
        if value.startswith("-") or any(char.isspace() or ord(char) < 32 for char in value):
            raise ValueError(f"{field}: invalid name {json.dumps(value[:80])}")
    if branch and tag:
        raise ValueError("a build is of a branch or of a tag, not both")
    return BuildContext("manual", branch or None, tag or None)


def jobs_from_pipeline(
    pipeline: Pipeline, env_overrides: Mapping[str, str], context: BuildContext = MANUAL
) -> list[NewJob]:
    """The jobs to store, steps resolved; a job whose `when:` is false says why in `skipped`."""
    jobs = []
    for job in pipeline.jobs:
        steps = tuple(
            StepSpecRecord(
                step.name, step.image, step.run, dict(step.env), step.timeout_s, step.user
            )
            for step in resolve_steps(pipeline, job, env_overrides)
        )
        spec = JobSpecRecord(
            steps,
            job.timeout_s,
            job.retry.max,
            tuple(job.retry.when),
            secrets=tuple(job.secrets),
            privileged=job.privileged,
            interruptible=job.interruptible,
            # Frozen here so that an attempt's inputs need no parse of the whole pipeline.
            artifact_paths=tuple(job.artifacts.paths),
            artifacts_always=job.artifacts.when == "always",
        )
        size = encoded_size(spec)
        if size > MAX_JOB_SPEC_BYTES:
            # Env is merged into every step, so a modest pipeline can resolve into a job too
            # large to hand to an agent in one message.
            raise ValueError(
                f"jobs.{job.name}: too large once the env is merged into its {len(steps)} steps "
                f"({size / 1e6:.1f} MB > {MAX_JOB_SPEC_BYTES / 1e6:.1f} MB); shrink the env"
            )
        skipped = ""
        if job.when is not None and not condition_admits(job.when, context):
            skipped = condition_message(job.when, context)
        jobs.append(
            NewJob(
                job.name,
                tuple(job.needs),
                _labels(job),
                spec,
                skipped,
                _gate(job),
                delivery_of(job),
            )
        )
    return jobs


def _labels(job: JobDef) -> dict[str, str]:
    # A privileged job asks for the label only agents started with --allow-privileged carry, so
    # matching, claiming and the queued reason all treat it as any other label.
    if not job.privileged:
        return dict(job.labels)
    key, value = PRIVILEGED_LABEL
    return {**job.labels, key: value}


def _gate(job: JobDef) -> GateSpec | None:
    if job.approval is None:
        return None
    return GateSpec(job.approval.prompt, tuple(job.approval.roles), job.approval.timeout_s)


def delivery_of(job: JobDef) -> JobDelivery | None:
    """The environment and lock of a job; an environment is an implicit lock group of its name."""
    if job.environment is None and job.concurrency is None:
        return None
    environment = job.environment.name if job.environment else ""
    url = (job.environment.url or "") if job.environment else ""
    group = job.concurrency.group if job.concurrency else environment
    order = job.concurrency.order if job.concurrency else CONCURRENCY_ORDERS[0]
    return JobDelivery(environment, url, group, order)


def encoded_size(spec: JobSpecRecord) -> int:
    """About the bytes the job takes once stored or sent: its JSON form, as the store keeps it."""
    return len(json.dumps(asdict(spec), sort_keys=True).encode())
