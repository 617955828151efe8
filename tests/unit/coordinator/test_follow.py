"""Following builds and logs over fake ports: resume points, step order, waiting for bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import grpc
import pytest

from conveyor.states import BuildStatus, JobStatus, StepStatus
from coordinator.config import LOG_READ_CHUNK_BYTES
from coordinator.domain.errors import DataLossError, NotFoundError
from coordinator.domain.follow import LogChunk, LogQuery
from coordinator.domain.records import AttemptRecord, BuildRecord, StepRecord
from coordinator.edge.errors import status_for
from tests.unit.coordinator.fakes import Harness, build, coordinator, job


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def step(index: int, status: StepStatus) -> StepRecord:
    return StepRecord(index, f"s{index}", status, None, None, None, 0)


def running_build(*statuses: StepStatus) -> BuildRecord:
    steps = tuple(step(i, s) for i, s in enumerate(statuses))
    attempt = AttemptRecord(11, 1, 7, "n", None, "", "", None, 0, None, steps)
    names = tuple(s.name for s in steps)
    return build(1, replace(job("j", JobStatus.RUNNING), step_names=names, attempts=(attempt,)))


def finished(record: BuildRecord) -> BuildRecord:
    (j,) = record.jobs
    (attempt,) = j.attempts
    steps = tuple(replace(s, status=StepStatus.SUCCEEDED) for s in attempt.steps)
    done = replace(j, status=JobStatus.SUCCEEDED, attempts=(replace(attempt, steps=steps),))
    return replace(record, status=BuildStatus.SUCCEEDED, jobs=(done,))


async def read(h: Harness, query: LogQuery) -> list[LogChunk]:
    return [chunk async for chunk in h.core.follow.read(query)]


def test_logs_come_in_step_order_from_the_resume_point() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = running_build(StepStatus.SUCCEEDED, StepStatus.SUCCEEDED)
        h.logs.logs[(11, 0)] = b"zero\n"
        h.logs.logs[(11, 1)] = b"one\n"
        chunks = await read(h, LogQuery(1, "j"))
        assert [(c.step_name, c.offset, c.data) for c in chunks] == [
            ("s0", 0, b"zero\n"),
            ("s1", 0, b"one\n"),
        ]
        resumed = await read(h, LogQuery(1, "j", from_step=1, from_offset=2))
        assert [(c.step_index, c.offset, c.data) for c in resumed] == [(1, 2, b"e\n")]
        assert await read(h, LogQuery(1, "j", step_name="s0", number=1)) == chunks[:1]
        await h.core.close()

    run(main())


def test_unknown_jobs_steps_and_attempts_are_not_found() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = running_build(StepStatus.RUNNING)
        for query in (LogQuery(1, "nope"), LogQuery(1, "j", "nope"), LogQuery(1, "j", number=9)):
            with pytest.raises(NotFoundError):
                await read(h, query)
        await h.core.close()

    run(main())


def test_a_large_log_is_read_a_chunk_at_a_time() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = running_build(StepStatus.SUCCEEDED)
        h.logs.logs[(11, 0)] = b"x" * (LOG_READ_CHUNK_BYTES + 10)
        chunks = await read(h, LogQuery(1, "j"))
        assert [(c.offset, len(c.data)) for c in chunks] == [
            (0, LOG_READ_CHUNK_BYTES),
            (LOG_READ_CHUNK_BYTES, 10),
        ]
        await h.core.close()

    run(main())


def test_following_a_running_step_waits_for_its_bytes_until_it_ends() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = running_build(StepStatus.RUNNING)
        got: list[bytes] = []

        async def follow() -> None:
            async for chunk in h.core.follow.read(LogQuery(1, "j", follow=True)):
                got.append(chunk.data)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        assert got == []
        h.logs.logs[(11, 0)] = b"late\n"
        h.state.builds.records[1] = finished(h.state.builds.records[1])
        h.core.notifier.changed(1)
        await asyncio.wait_for(task, 2.0)
        assert got == [b"late\n"]
        await h.core.close()

    run(main())


def test_watch_sends_log_bytes_before_the_snapshot_and_resumes_without_repeats() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = finished(running_build(StepStatus.RUNNING))
        h.logs.logs[(11, 0)] = b"abcdef"
        events = [e async for e in h.core.follow.watch(1, True, {("j", 1, 0): 4})]
        assert len(events) == 2
        chunk, snapshot = events
        assert isinstance(chunk, LogChunk) and (chunk.offset, chunk.data) == (4, b"ef")
        assert snapshot == h.state.builds.records[1]
        await h.core.close()

    run(main())


def test_a_log_truncated_under_a_follower_is_data_loss_naming_the_step() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = running_build(StepStatus.RUNNING)
        h.logs.logs[(11, 0)] = b"abcdef"
        got: list[bytes] = []

        async def follow() -> None:
            async for chunk in h.core.follow.read(LogQuery(1, "j", follow=True)):
                got.append(chunk.data)

        task = asyncio.create_task(follow())
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [b"abcdef"]
        h.logs.logs[(11, 0)] = b"ab"  # truncated behind the coordinator's back
        h.core.notifier.changed(1)
        with pytest.raises(DataLossError, match=r"job 'j' attempt 1 step 0 's0' is 2 bytes"):
            await asyncio.wait_for(task, 2.0)
        assert status_for(DataLossError("x")) is grpc.StatusCode.DATA_LOSS
        await h.core.close()

    run(main())


def test_a_watch_resumed_past_the_stored_log_is_data_loss() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = finished(running_build(StepStatus.RUNNING))
        h.logs.logs[(11, 0)] = b"abc"
        with pytest.raises(DataLossError, match="step 0 's0'"):
            _ = [e async for e in h.core.follow.watch(1, True, {("j", 1, 0): 6})]
        await h.core.close()

    run(main())
