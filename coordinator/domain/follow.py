"""Streams a build's changes and its log bytes to clients, live, with bounded memory.

Each stream holds at most one chunk at a time: gRPC's flow control makes a slow reader slow the
stream down rather than pile bytes up in the coordinator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from conveyor.states import StepStatus
from coordinator.config import LOG_READ_CHUNK_BYTES, WATCH_REFRESH_S
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import AttemptRecord, BuildRecord, JobRecord, StepRecord


async def log_bytes(
    core: Coordinator, attempt_id: int, step_index: int, offset: int
) -> AsyncIterator[tuple[int, bytes]]:
    """(offset, data) chunks of a step's log from `offset` to what is held right now."""
    while True:
        data = await core.io(core.logs.read, attempt_id, step_index, offset, LOG_READ_CHUNK_BYTES)
        if not data:
            return
        yield offset, data
        offset += len(data)


LogKey = tuple[str, int, int]  # job name, attempt number, step index


async def watch_build(
    core: Coordinator, build_id: int, include_logs: bool, resume: Mapping[LogKey, int]
) -> AsyncIterator[BuildRecord | tuple[JobRecord, AttemptRecord, StepRecord, int, bytes]]:
    """Yields a snapshot on every change and, if asked, every log chunk; ends once final.

    `resume` holds the bytes a reconnecting client already has, so nothing is sent twice.
    """
    sent: dict[LogKey, int] = dict(resume)
    last: BuildRecord | None = None
    while True:
        version = core.notifier.version(build_id)
        build = await core.get_build(build_id)
        # Logs go first so a client sees a step's last bytes before the snapshot that ends it.
        if include_logs:
            for job in build.jobs:
                for attempt in job.attempts:
                    for step in attempt.steps:
                        if step.status is StepStatus.PENDING:
                            continue
                        key = (job.name, attempt.number, step.index)
                        async for offset, data in log_bytes(
                            core, attempt.id, step.index, sent.get(key, 0)
                        ):
                            yield job, attempt, step, offset, data
                            sent[key] = offset + len(data)
        if build != last:
            yield build
            last = build
        if build.status.final:
            return
        await core.notifier.wait(build_id, version, WATCH_REFRESH_S)


def pick_attempt(build: BuildRecord, job_name: str, number: int) -> AttemptRecord | None:
    job = build.job(job_name)
    if job is None:
        names = ", ".join(j.name for j in build.jobs)
        raise NotFoundError(f"build {build.id} has no job '{job_name}' (jobs: {names})")
    if number:
        found = next((a for a in job.attempts if a.number == number), None)
        if found is None:
            raise NotFoundError(f"job '{job_name}' has no attempt {number}")
        return found
    return job.attempts[-1] if job.attempts else None


def pick_steps(job: JobRecord, step_name: str) -> list[int]:
    if not step_name:
        return list(range(len(job.step_names)))
    if step_name not in job.step_names:
        names = ", ".join(job.step_names)
        raise NotFoundError(f"job '{job.name}' has no step '{step_name}' (steps: {names})")
    return [job.step_names.index(step_name)]


@dataclass(frozen=True)
class LogQuery:
    build_id: int
    job_name: str
    step_name: str = ""  # empty: every step
    number: int = 0  # attempt number; 0: the latest
    follow: bool = False
    from_step: int = 0  # resume point after a reconnect
    from_offset: int = 0


async def read_logs(
    core: Coordinator, query: LogQuery
) -> AsyncIterator[tuple[AttemptRecord, StepRecord, int, bytes]]:
    """A job's step logs in step order; with `follow`, waits for bytes until each step ends."""
    build_id, job_name, number, follow = query.build_id, query.job_name, query.number, query.follow
    build = await core.get_build(build_id)
    job = build.job(job_name)
    attempt = pick_attempt(build, job_name, number)
    assert job is not None
    indexes = [i for i in pick_steps(job, query.step_name) if i >= query.from_step]
    while attempt is None and follow and not job.status.final:
        version = core.notifier.version(build_id)
        await core.notifier.wait(build_id, version, WATCH_REFRESH_S)
        build = await core.get_build(build_id)
        job = build.job(job_name)
        assert job is not None
        attempt = pick_attempt(build, job_name, number)
    if attempt is None:
        return
    for index in indexes:
        offset = query.from_offset if index == query.from_step else 0
        while True:
            version = core.notifier.version(build_id)
            step = attempt.steps[index]
            async for chunk_offset, data in log_bytes(core, attempt.id, index, offset):
                yield attempt, step, chunk_offset, data
                offset = chunk_offset + len(data)
            if not follow or step.status.final:
                break
            await core.notifier.wait(build_id, version, WATCH_REFRESH_S)
            refreshed = pick_attempt(await core.get_build(build_id), job_name, attempt.number)
            assert refreshed is not None
            attempt = refreshed
