"""Following a build or a log live, riding out a coordinator restart without gaps or repeats.

Both streams remember how far they got (log offsets per job, attempt and step) and resume from
there when the coordinator comes back.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from conveyor import wire
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_UNAVAILABLE, CliError
from conveyor.cli.progress import Progress
from conveyor.cli.views import View
from conveyor.v1 import control_pb2

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# How long a follower keeps trying to get the coordinator back before giving up.
RECONNECT_BUDGET_S = 120.0
RECONNECT_PAUSE_S = 1.0


def _reconnecting(open_stream: Callable[[], Iterator[T]]) -> Iterator[T]:
    """Yields from streams opened by `open_stream`, reopening while the coordinator is away."""
    deadline: float | None = None
    while True:
        try:
            for item in open_stream():
                deadline = None
                yield item
            return
        except CliError as error:
            if error.exit_code != EXIT_UNAVAILABLE:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + RECONNECT_BUDGET_S
                print(f"conveyor: {error}; reconnecting...", file=sys.stderr, flush=True)
            if now > deadline:
                raise
            time.sleep(RECONNECT_PAUSE_S)


def follow_build(
    client: Client,
    build_id: int,
    show_progress: bool,
    earlier: control_pb2.Build | None = None,
    view: View | None = None,
) -> control_pb2.Build:
    """Follows a build to its end; returns its final snapshot.

    `earlier` is the build as it was before a retry: its attempts' logs and states are not
    shown again, only what the new attempts do. `view` shows it (plain lines by default).
    """
    shown: View = view or Progress(show_logs=show_progress)
    offsets: dict[tuple[str, int, int], int] = {}
    old_attempts: set[tuple[str, int]] = set()
    last: control_pb2.Build | None = None
    with shown:
        if earlier is not None:
            shown.prime(earlier)
            old_attempts = _skip_earlier(earlier, offsets)
        stream = _reconnecting(lambda: client.watch(build_id, show_progress, offsets))
        for event in stream:
            if event.HasField("snapshot"):
                last = event.snapshot
                if show_progress:
                    shown.snapshot(last)
            elif show_progress:
                chunk = event.log
                offsets[(chunk.job, chunk.attempt_number, chunk.step_index)] = chunk.offset + len(
                    chunk.data
                )
                if (chunk.job, chunk.attempt_number) not in old_attempts:
                    shown.log(chunk)
    if last is None or not wire.build_status_from_pb(last.status).final:
        last = client.get_build(build_id)
    return last


def _skip_earlier(
    earlier: control_pb2.Build, offsets: dict[tuple[str, int, int], int]
) -> set[tuple[str, int]]:
    """The (job, attempt) pairs of `earlier`; sets `offsets` past their finished steps' logs
    so the coordinator need not send them (what it sends anyway is dropped)."""
    attempts = set()
    for job in earlier.jobs:
        for attempt in job.attempts:
            attempts.add((job.name, attempt.number))
            for step in attempt.steps:
                if wire.step_status_from_pb(step.status).final and step.log_length:
                    offsets[(job.name, attempt.number, step.index)] = step.log_length
    return attempts


def stream_logs(client: Client, request: control_pb2.ReadLogsRequest) -> Iterator[bytes]:
    """A job's log bytes; with follow, resumes after a reconnect where it left off."""
    position = control_pb2.ReadLogsRequest()
    position.CopyFrom(request)

    def reopen() -> Iterator[control_pb2.LogChunk]:
        return client.read_logs(position)

    for chunk in _reconnecting(reopen):
        # Pin the attempt and move the resume point past what has been written out.
        position.attempt_number = chunk.attempt_number
        position.from_step = chunk.step_index
        position.from_offset = chunk.offset + len(chunk.data)
        yield chunk.data
