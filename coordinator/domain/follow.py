"""Streams a build's changes and its log bytes to clients, live, with bounded memory.

Each stream holds at most one chunk at a time: the edge's flow control (gRPC's, or an HTTP
response's) makes a slow reader slow the stream down rather than pile bytes up here. The streams
of one build share its snapshot (one store read per change, `SharedSnapshots`) and their log
reads (one file read per chunk for all who are at the same offset); a log append wakes them
without a store read. `streams` bounds how many one client holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from conveyor.states import StepStatus
from coordinator.config import (
    LOG_RANGE_MAX_BYTES,
    LOG_READ_CHUNK_BYTES,
    MAX_LOG_OFFSET_BYTES,
    MAX_STREAMS_PER_CLIENT,
    WATCH_REFRESH_S,
    WATCH_SNAPSHOT_MAX_AGE_S,
)
from coordinator.domain.bounds import check_range
from coordinator.domain.builds import Builds
from coordinator.domain.errors import DataLossError, NotFoundError, RangeError
from coordinator.domain.fanout import ClientStreams, SingleFlight
from coordinator.domain.notify import BuildNotifier, SharedSnapshots
from coordinator.domain.ports import LogStorage
from coordinator.domain.records import AttemptRecord, BuildRecord, JobRecord, StepRecord
from coordinator.domain.runtime import Runtime

LogKey = tuple[str, int, int]  # job name, attempt number, step index


@dataclass(frozen=True)
class LogChunk:
    job: str
    attempt_number: int
    step_index: int
    step_name: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class LogQuery:
    build_id: int
    job_name: str
    step_name: str = ""  # empty: every step
    number: int = 0  # attempt number; 0: the latest
    follow: bool = False
    from_step: int = 0  # resume point after a reconnect
    from_offset: int = 0


@dataclass(frozen=True)
class LogRange:
    """Bytes of one step's log from `offset`, and the log's whole length as held right now."""

    offset: int
    data: bytes
    total: int


def pick_attempt(build: BuildRecord, job_name: str, number: int) -> AttemptRecord | None:
    """The attempt numbered `number` (0: the latest, None if none yet); NotFoundError if unknown."""
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


def _step_label(job: str, attempt_number: int, index: int, name: str) -> str:
    return f"job '{job}' attempt {attempt_number} step {index} '{name}'"


def _may_have_news(step: StepRecord, sent: int) -> bool:
    """Whether a step's log may hold bytes past `sent`: not if it has not started, nor once it
    has ended and `sent` reached the length recorded at its end (0 may be unrecorded: a step
    ended by the reaper, so that one is read)."""
    if step.status is StepStatus.PENDING:
        return False
    return not (step.status.final and step.log_length and sent == step.log_length)


class Follow:
    def __init__(
        self,
        *,
        runtime: Runtime,
        logs: LogStorage,
        notifier: BuildNotifier,
        builds: Builds,
        max_streams_per_client: int = MAX_STREAMS_PER_CLIENT,
    ) -> None:
        self._runtime = runtime
        self._logs = logs
        self._notifier = notifier
        self._snapshots = SharedSnapshots(builds.get, notifier, max_age_s=WATCH_SNAPSHOT_MAX_AGE_S)
        self._reads: SingleFlight[bytes] = SingleFlight()
        self._lengths: SingleFlight[int] = SingleFlight()
        self.streams = ClientStreams(max_streams_per_client)

    async def log_bytes(
        self,
        attempt_id: int,
        step_index: int,
        offset: int,
        what: str = "",
        *,
        seen: int,
        served: bool = True,
    ) -> AsyncIterator[tuple[int, bytes]]:
        """(offset, data) chunks of a step's log from `offset` to what is held right now.

        `seen` is the build's notifier version the caller saw before asking: callers who saw
        the same one share each read, and a read begun before a later append is shared with no
        one who has heard of that append (it might not hold its bytes).

        `served` says this stream itself served the bytes up to `offset`: a stored log shorter
        than that was truncated (or replaced) under the reader, and DataLossError says so, naming
        the step (`what`). An offset the client asked for past the end reads nothing, as a file
        read past its end does.
        """
        while True:
            data = await self._read_chunk(attempt_id, step_index, offset, seen)
            if not data:
                held = await self._lengths.run(
                    (attempt_id, step_index, seen),
                    lambda: self._runtime.io(self._logs.length, attempt_id, step_index),
                )
                if served and held < offset:
                    raise DataLossError(
                        f"the stored log of {what or f'step {step_index}'} is {held} bytes, "
                        f"shorter than the {offset} bytes already served: it was truncated "
                        "on the coordinator; its output from there on is lost"
                    )
                return
            yield offset, data
            offset += len(data)

    async def _read_chunk(self, attempt_id: int, step_index: int, offset: int, seen: int) -> bytes:
        """Followers at the same place in the same log, woken by the same change, share one
        read of it."""
        return await self._reads.run(
            (attempt_id, step_index, offset, seen),
            lambda: self._runtime.io(
                self._logs.read, attempt_id, step_index, offset, LOG_READ_CHUNK_BYTES
            ),
        )

    async def watch(
        self, build_id: int, include_logs: bool, resume: Mapping[LogKey, int]
    ) -> AsyncIterator[BuildRecord | LogChunk]:
        """Yields a snapshot on every change and, if asked, every log chunk; ends once final.

        `resume` holds the bytes a reconnecting client already has, so nothing is sent twice.
        """
        for (job, number, index), offset in resume.items():
            check_range("resume.attempt_number", number, 0, 2**31 - 1)
            check_range("resume.step_index", index, 0, 2**31 - 1)
            check_range(f"resume.offset (job {job!r})", offset, 0, MAX_LOG_OFFSET_BYTES)
        sent: dict[LogKey, int] = dict(resume)
        # A resume offset is what an earlier stream of ours sent this client: below it is loss.
        served: set[LogKey] = set(resume)
        last: BuildRecord | None = None
        with self._snapshots.watching(build_id):
            while True:
                if include_logs:
                    version = self._notifier.version(build_id)
                else:
                    version = self._notifier.state_version(build_id)
                build = await self._snapshots.get(build_id)
                # Logs go first so a client sees a step's last bytes before the snapshot that
                # ends it.
                if include_logs:
                    async for chunk in self._new_log_bytes(build, sent, served, version):
                        yield chunk
                if build is not last and build != last:  # a shared snapshot: mostly the same
                    yield build
                    last = build
                if build.status.final:
                    return
                await self._notifier.wait(build_id, version, WATCH_REFRESH_S, logs=include_logs)

    async def _new_log_bytes(
        self, build: BuildRecord, sent: dict[LogKey, int], served: set[LogKey], seen: int
    ) -> AsyncIterator[LogChunk]:
        """Log bytes of every started step past what `sent` says was sent; updates `sent` and
        `served` (the steps whose offset in `sent` this stream reached itself)."""
        for job in build.jobs:
            for attempt in job.attempts:
                for step in attempt.steps:
                    key = (job.name, attempt.number, step.index)
                    if not _may_have_news(step, sent.get(key, 0)):
                        continue
                    what = _step_label(job.name, attempt.number, step.index, step.name)
                    async for offset, data in self.log_bytes(
                        attempt.id,
                        step.index,
                        sent.get(key, 0),
                        what,
                        seen=seen,
                        served=key in served,
                    ):
                        yield LogChunk(
                            job.name, attempt.number, step.index, step.name, offset, data
                        )
                        sent[key] = offset + len(data)
                        served.add(key)

    async def read(self, query: LogQuery) -> AsyncIterator[LogChunk]:
        """A job's step logs in step order; with `follow`, waits for bytes until each step ends."""
        check_range("attempt_number", query.number, 0, 2**31 - 1)
        check_range("from_step", query.from_step, 0, 2**31 - 1)
        check_range("from_offset", query.from_offset, 0, MAX_LOG_OFFSET_BYTES)
        with self._snapshots.watching(query.build_id):
            build = await self._snapshots.get(query.build_id)
            attempt = pick_attempt(build, query.job_name, query.number)
            job = build.job(query.job_name)
            assert job is not None
            indexes = [i for i in pick_steps(job, query.step_name) if i >= query.from_step]
            if attempt is None and query.follow:
                attempt = await self._first_attempt(query)
            if attempt is None:
                return
            for index in indexes:
                offset = query.from_offset if index == query.from_step else 0
                async for chunk in self._read_step(query, attempt, index, offset):
                    yield chunk

    async def read_range(
        self, build_id: int, job_name: str, step_index: int, number: int, offset: int, limit: int
    ) -> LogRange:
        """Up to `limit` bytes (at most LOG_RANGE_MAX_BYTES) of one step's log from `offset`:
        any slice of a log of any size, read in bounded memory. A step not started yet has an
        empty log; an offset past the end is RangeError (one at the end reads nothing)."""
        check_range("attempt", number, 0, 2**31 - 1)
        check_range("step", step_index, 0, 2**31 - 1)
        check_range("offset", offset, 0, MAX_LOG_OFFSET_BYTES)
        check_range("limit", limit, 1, LOG_RANGE_MAX_BYTES)
        build = await self._snapshots.get(build_id)
        attempt = pick_attempt(build, job_name, number)
        job = build.job(job_name)
        assert job is not None
        if step_index >= len(job.step_names):
            raise NotFoundError(f"job '{job_name}' has no step {step_index}")
        total = 0
        if attempt is not None and step_index < len(attempt.steps):
            total = await self._runtime.io(self._logs.length, attempt.id, step_index)
        if offset > total:
            raise RangeError(f"offset {offset} is past the end of the log ({total} bytes)")
        data = b""
        if attempt is not None and offset < total:
            size = min(limit, total - offset)
            data = await self._runtime.io(self._logs.read, attempt.id, step_index, offset, size)
        return LogRange(offset, data, total)

    async def _first_attempt(self, query: LogQuery) -> AttemptRecord | None:
        """Waits for the job's first attempt; None if the job ends without one."""
        while True:
            version = self._notifier.state_version(query.build_id)
            build = await self._snapshots.get(query.build_id)
            attempt = pick_attempt(build, query.job_name, query.number)
            job = build.job(query.job_name)
            if attempt is not None or job is None or job.status.final:
                return attempt
            await self._notifier.wait(query.build_id, version, WATCH_REFRESH_S, logs=False)

    async def _read_step(
        self, query: LogQuery, attempt: AttemptRecord, index: int, offset: int
    ) -> AsyncIterator[LogChunk]:
        served = False  # `offset` is the client's until this stream has sent bytes itself
        while True:
            version = self._notifier.version(query.build_id)
            step = attempt.steps[index]
            what = _step_label(query.job_name, attempt.number, index, step.name)
            async for chunk_offset, data in self.log_bytes(
                attempt.id, index, offset, what, seen=version, served=served
            ):
                yield LogChunk(query.job_name, attempt.number, index, step.name, chunk_offset, data)
                offset = chunk_offset + len(data)
                served = True
            if not query.follow or step.status.final:
                return
            await self._notifier.wait(query.build_id, version, WATCH_REFRESH_S)
            build = await self._snapshots.get(query.build_id)
            refreshed = pick_attempt(build, query.job_name, attempt.number)
            assert refreshed is not None
            attempt = refreshed
