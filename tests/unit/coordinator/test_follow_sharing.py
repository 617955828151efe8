"""Many followers of one build share its reads: the store is read per change, not per follower,
and a log append is not a change; each client holds a bounded number of streams."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any, cast

import grpc
import pytest

from conveyor import PROTOCOL_VERSION
from conveyor.states import BuildStatus, JobStatus, StepStatus
from coordinator.config import WATCH_REFRESH_S, WATCH_SNAPSHOT_MAX_AGE_S
from coordinator.domain.errors import ExhaustedError, NotFoundError
from coordinator.domain.fanout import ClientStreams, SingleFlight
from coordinator.domain.follow import LogChunk, LogQuery
from coordinator.domain.notify import BuildNotifier, SharedSnapshots
from coordinator.domain.records import AttemptRecord, BuildRecord, StepRecord
from coordinator.domain.registry import AgentSession
from coordinator.edge.control_service import client_of
from coordinator.edge.errors import Context, status_for
from tests.unit.coordinator.fakes import Harness, build, coordinator, job

FOLLOWERS = 1000
APPENDS = 100
LINE = b"a line of output\n"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def count_reads(h: Harness) -> list[int]:
    """Build ids the store was asked for, one entry per read (the store's `get`)."""
    reads: list[int] = []
    store_get = h.state.builds.get

    def counted(build_id: int) -> BuildRecord:
        reads.append(build_id)
        return store_get(build_id)

    h.state.builds.get = counted  # type: ignore[method-assign]
    return reads


def talking_build(attempt_id: int, status: StepStatus = StepStatus.RUNNING) -> BuildRecord:
    step = StepRecord(0, "s0", status, None, None, None, 0)
    attempt = AttemptRecord(attempt_id, 1, 7, "n", None, "", "", None, 0, None, (step,))
    j = replace(job("job-0", JobStatus.RUNNING), step_names=("s0",), attempts=(attempt,))
    return build(1, j)


def ended(record: BuildRecord) -> BuildRecord:
    (j,) = record.jobs
    (attempt,) = j.attempts
    steps = tuple(replace(s, status=StepStatus.SUCCEEDED) for s in attempt.steps)
    done = replace(j, status=JobStatus.SUCCEEDED, attempts=(replace(attempt, steps=steps),))
    return replace(record, status=BuildStatus.SUCCEEDED, jobs=(done,))


async def leased_attempt(h: Harness) -> tuple[AgentSession, int, str]:
    """An agent holding the lease of build 1's attempt (the fake store's first claim)."""
    registration = await h.core.agents.register(
        join_token="a",
        name="n",
        labels={},
        capacity=1,
        protocol_version=PROTOCOL_VERSION,
        running=(),
    )
    h.state.attempts.queued.append(("job-0", {}))
    polled = await h.core.agents.poll(registration.agent, free_slots=1, draining=False)
    (work,) = polled.assignments
    return registration.agent, work.attempt_id, work.lease_token


async def settle(condition: Any, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_thousand_watchers_and_a_hundred_appends_cost_a_few_store_reads() -> None:
    async def main() -> None:
        h = coordinator()
        agent, attempt_id, token = await leased_attempt(h)
        h.state.builds.records[1] = talking_build(attempt_id)
        reads = count_reads(h)
        seen: list[list[BuildRecord | LogChunk]] = [[] for _ in range(FOLLOWERS)]

        async def watch(events: list[BuildRecord | LogChunk]) -> None:
            async for event in h.core.follow.watch(1, True, {}):
                events.append(event)

        tasks = [asyncio.create_task(watch(events)) for events in seen]
        await settle(lambda: all(seen), "every watcher's first snapshot")
        started = time.monotonic()
        for index in range(APPENDS):
            offset = index * len(LINE)
            await h.core.attempts.append_log(agent, attempt_id, token, 0, offset, LINE)
            if index % 10 == 0:
                await asyncio.sleep(0.01)  # let the watchers catch up now and then
        # Appends change no stored state: they cost no read, however many watch. Watchers still
        # refresh their shared snapshot on a timer; on a loaded machine the appends may outlast it.
        refreshes = math.ceil((time.monotonic() - started) / WATCH_SNAPSHOT_MAX_AGE_S)
        assert len(reads) <= 2 + refreshes, (len(reads), refreshes)
        h.state.builds.records[1] = ended(h.state.builds.records[1])
        h.core.notifier.changed(1)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        refreshes = math.ceil((time.monotonic() - started) / WATCH_SNAPSHOT_MAX_AGE_S)
        assert len(reads) <= 4 + refreshes, (len(reads), refreshes)
        for events in seen:
            logs = b"".join(e.data for e in events if isinstance(e, LogChunk))
            assert logs == LINE * APPENDS
            assert events[-1] == h.state.builds.records[1]
        await h.core.close()

    run(main())


def test_a_watcher_without_logs_is_not_woken_by_log_appends() -> None:
    async def main() -> None:
        h = coordinator()
        agent, attempt_id, token = await leased_attempt(h)
        h.state.builds.records[1] = talking_build(attempt_id)
        looks: list[int] = []  # one entry per time the watcher looked at the build
        shared_get = h.core.follow._snapshots.get

        async def counted(build_id: int) -> BuildRecord:
            looks.append(build_id)
            return await shared_get(build_id)

        h.core.follow._snapshots.get = counted  # type: ignore[method-assign]
        events: list[BuildRecord | LogChunk] = []

        async def watch() -> None:
            async for event in h.core.follow.watch(1, False, {}):
                events.append(event)

        task = asyncio.create_task(watch())
        await settle(lambda: events, "the first snapshot")
        started = time.monotonic()
        for index in range(APPENDS):
            await h.core.attempts.append_log(agent, attempt_id, token, 0, index * len(LINE), LINE)
            await asyncio.sleep(0)
        # A step printing fast appends once per chunk: a watcher of states only sleeps through
        # it (it still looks on its refresh timer, which a loaded machine may reach).
        refreshes = math.ceil((time.monotonic() - started) / WATCH_REFRESH_S)
        assert len(looks) <= 1 + refreshes, (len(looks), refreshes)
        h.state.builds.records[1] = ended(h.state.builds.records[1])
        h.core.notifier.changed(1)
        await asyncio.wait_for(task, 30)
        assert events[-1] == h.state.builds.records[1]
        assert not any(isinstance(event, LogChunk) for event in events)
        await h.core.close()

    run(main())


def test_log_followers_read_bytes_from_the_log_files_not_the_store() -> None:
    async def main() -> None:
        h = coordinator()
        agent, attempt_id, token = await leased_attempt(h)
        h.state.builds.records[1] = talking_build(attempt_id)
        reads = count_reads(h)
        got = [bytearray() for _ in range(FOLLOWERS)]

        async def follow(into: bytearray) -> None:
            async for chunk in h.core.follow.read(LogQuery(1, "job-0", follow=True)):
                assert chunk.offset == len(into)
                into += chunk.data

        tasks = [asyncio.create_task(follow(into)) for into in got]
        for index in range(APPENDS):
            await h.core.attempts.append_log(agent, attempt_id, token, 0, index * len(LINE), LINE)
            await asyncio.sleep(0)
        await settle(lambda: all(len(g) == APPENDS * len(LINE) for g in got), "every byte")
        assert len(reads) <= 2, len(reads)
        h.state.builds.records[1] = ended(h.state.builds.records[1])
        h.core.notifier.changed(1)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert all(bytes(g) == LINE * APPENDS for g in got)
        await h.core.close()

    run(main())


def test_a_burst_of_changes_during_a_read_costs_one_more_read() -> None:
    async def main() -> None:
        notifier = BuildNotifier()
        release = asyncio.Event()
        reads: list[int] = []

        async def slow_read(build_id: int) -> BuildRecord:
            reads.append(notifier.state_version(build_id))
            await release.wait()
            return build(build_id)

        snapshots = SharedSnapshots(slow_read, notifier, max_age_s=60)
        with snapshots.watching(1):
            first = asyncio.gather(*(snapshots.get(1) for _ in range(FOLLOWERS)))
            await asyncio.sleep(0.01)
            for _ in range(APPENDS):
                notifier.changed(1)
            # Asked after the burst: they must not get the read that began before it.
            later = asyncio.gather(*(snapshots.get(1) for _ in range(FOLLOWERS)))
            await asyncio.sleep(0.01)
            release.set()
            await first
            await later
            assert reads == [0, APPENDS]
            await snapshots.get(1)  # nothing changed since: the shared snapshot serves
            assert len(reads) == 2

    run(main())


def test_a_snapshot_is_read_again_once_old_and_a_failed_read_fails_all_who_wait() -> None:
    async def main() -> None:
        notifier = BuildNotifier()
        now = [0.0]
        reads: list[int] = []

        async def read(build_id: int) -> BuildRecord:
            reads.append(build_id)
            await asyncio.sleep(0)
            if build_id == 2:
                raise NotFoundError("build 2 does not exist")
            return build(build_id)

        snapshots = SharedSnapshots(read, notifier, max_age_s=5, clock=lambda: now[0])
        with snapshots.watching(1), snapshots.watching(2):
            await snapshots.get(1)
            now[0] = 4.0
            await snapshots.get(1)
            assert reads == [1]
            now[0] = 5.5  # another coordinator's change would not be notified here
            await snapshots.get(1)
            assert reads == [1, 1]
            results = await asyncio.gather(
                *(snapshots.get(2) for _ in range(10)), return_exceptions=True
            )
            assert all(isinstance(r, NotFoundError) for r in results)
            assert reads == [1, 1, 2]

    run(main())


def test_one_asker_going_away_does_not_cancel_a_shared_read() -> None:
    async def main() -> None:
        flight: SingleFlight[bytes] = SingleFlight()
        release = asyncio.Event()
        calls: list[str] = []

        async def read() -> bytes:
            calls.append("read")
            await release.wait()
            return b"bytes"

        leaving = asyncio.create_task(flight.run("key", read))
        staying = asyncio.create_task(flight.run("key", read))
        await asyncio.sleep(0.01)
        leaving.cancel()
        release.set()
        assert await staying == b"bytes"
        assert calls == ["read"]
        assert len(flight) == 0  # joined, not kept: the next read is fresh
        assert await flight.run("key", read) == b"bytes"
        assert calls == ["read", "read"]

    run(main())


def test_a_client_over_its_stream_limit_is_refused_naming_the_limit() -> None:
    streams = ClientStreams(limit=2)
    with streams.open("ipv4:10.0.0.1"), streams.open("ipv4:10.0.0.1"):
        with streams.open("ipv4:10.0.0.2"):  # another client has its own allowance
            pass
        refused = pytest.raises(ExhaustedError, match=r"MAX_STREAMS_PER_CLIENT = 2 streams")
        with refused, streams.open("ipv4:10.0.0.1"):
            pass
        assert streams.held("ipv4:10.0.0.1") == 2
    assert streams.held("ipv4:10.0.0.1") == 0
    with streams.open("ipv4:10.0.0.1"):  # closed streams free their places
        pass
    assert status_for(ExhaustedError("x")) is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_reads_for_many_builds_take_turns_on_the_store_thread() -> None:
    async def main() -> None:
        notifier = BuildNotifier()
        in_flight = [0, 0]  # now, most

        async def read(build_id: int) -> BuildRecord:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
            await asyncio.sleep(0.001)
            in_flight[0] -= 1
            return build(build_id)

        snapshots = SharedSnapshots(read, notifier, max_age_s=60)
        got = await asyncio.gather(*(snapshots.get(b) for b in range(1, 51)))
        assert [r.id for r in got] == list(range(1, 51))
        # One in the store's queue at a time: anyone else's request waits for one read at most.
        assert in_flight[1] == 1

    run(main())


def test_a_client_is_its_address_without_the_port() -> None:
    class Peer:
        def __init__(self, peer: str) -> None:
            self._peer = peer

        def peer(self) -> str:
            return self._peer

    def of(peer: str) -> str:
        return client_of(cast(Context, Peer(peer)))

    assert of("ipv4:127.0.0.1:50123") == of("ipv4:127.0.0.1:50999") == "ipv4:127.0.0.1"
    assert of("ipv6:[::1]:50123") == "ipv6:[::1]"
    assert of("unix:/run/conveyor.sock") == "unix:/run/conveyor.sock"


def test_a_follower_who_heard_of_an_append_never_shares_a_read_begun_before_it() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = talking_build(11)
        entered, release = threading.Event(), threading.Event()
        plain_read = h.logs.read

        def first_read_blocks(attempt_id: int, step_index: int, offset: int, limit: int) -> bytes:
            if not entered.is_set():
                entered.set()
                release.wait(10)
            return plain_read(attempt_id, step_index, offset, limit)

        h.logs.read = first_read_blocks  # type: ignore[method-assign]
        follow = h.core.follow
        before = h.core.notifier.version(1)
        early = asyncio.create_task(_all(follow.log_bytes(11, 0, 0, seen=before)))
        await asyncio.to_thread(entered.wait, 10)  # its read began on an empty log
        h.logs.logs[(11, 0)] = LINE
        h.core.notifier.appended(1)
        after = h.core.notifier.version(1)
        late = await asyncio.wait_for(_all(follow.log_bytes(11, 0, 0, seen=after)), 10)
        assert late == [(0, LINE)]
        release.set()
        await early
        await h.core.close()

    run(main())


async def _all(chunks: AsyncIterator[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    return [chunk async for chunk in chunks]
