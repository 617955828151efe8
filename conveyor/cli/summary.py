"""The summary under a live view's log lines: the build, then one row a job (state, attempt,
time, what it runs or waits for), cut to fit the terminal with the jobs still to end first."""

from __future__ import annotations

import time

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.terminal import JobStyles, status_style
from conveyor.v1 import control_pb2

_DONE = frozenset({"succeeded", "failed", "canceled", "skipped"})
# Rows of the terminal left for the log lines above the summary, at the least.
_LOG_ROWS = 6


class Summary:
    def __init__(self) -> None:
        self._build: control_pb2.Build | None = None
        self._styles = JobStyles()

    def update(self, build: control_pb2.Build, styles: JobStyles) -> None:
        self._build = build
        self._styles = styles

    def render(self, height: int) -> list[RenderableType]:
        build = self._build
        if build is None:
            return [Text("waiting for the coordinator...", style="dim")]
        status = wire.build_status_from_pb(build.status).value
        jobs = list(build.jobs)
        done = sum(1 for job in jobs if _state(job) in _DONE)
        head = Text(f"build {build.id} ", style="bold")
        head.append(printable(build.name), style="bold")
        head.append(": ")
        head.append(status, style=status_style(status))
        head.append(
            f"  {done}/{len(jobs)} jobs done  {_clock(build.created_at_ms, build.finished_at_ms)}"
        )
        room = max(1, height - _LOG_ROWS - 2)
        shown = _fit(jobs, room)
        grid = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        for _ in range(5):
            grid.add_column(no_wrap=True, overflow="ellipsis")
        for job in shown:
            grid.add_row(*self._row(build.id, job))
        parts: list[RenderableType] = [head, grid]
        if len(shown) < len(jobs):
            parts.append(Text(f"  … {len(jobs) - len(shown)} more jobs ended", style="dim"))
        return parts

    def _row(self, build_id: int, job: control_pb2.Job) -> list[Text]:
        state = _state(job)
        attempt = job.attempts[-1] if job.attempts else None
        return [
            Text("  " + printable(job.name), style=self._styles.of(job.name)),
            Text(state, style=status_style(state)),
            Text(f"attempt {attempt.number}" if attempt else ""),
            Text(_clock(attempt.started_at_ms, attempt.finished_at_ms) if attempt else ""),
            Text(_detail(build_id, job, state, attempt), style="dim"),
        ]


def _state(job: control_pb2.Job) -> str:
    return wire.job_status_from_pb(job.status).value


def _fit(jobs: list[control_pb2.Job], room: int) -> list[control_pb2.Job]:
    """At most `room` jobs in the build's order: the ones still to end first, then the latest
    ended ones."""
    if len(jobs) <= room:
        return jobs
    open_jobs = [job for job in jobs if _state(job) not in _DONE]
    keep = {id(job) for job in open_jobs[:room]}
    ended = [job for job in jobs if id(job) not in keep and _state(job) in _DONE]
    keep.update(id(job) for job in ended[: max(0, room - len(keep))])
    return [job for job in jobs if id(job) in keep]


def _clock(start_ms: int, end_ms: int) -> str:
    if not start_ms:
        return ""
    seconds = max(0, int(((end_ms or time.time() * 1000) - start_ms) / 1000))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _detail(
    build_id: int, job: control_pb2.Job, state: str, attempt: control_pb2.Attempt | None
) -> str:
    if state == "running" and attempt is not None:
        steps = list(attempt.steps)
        current = next(
            (s for s in steps if wire.step_status_from_pb(s.status).value == "running"), None
        )
        where = f"on {printable(attempt.agent_name)}"
        if current is None:
            return where
        return f"step {current.index + 1}/{len(steps)} {printable(current.name)} {where}"
    if state == "waiting_for_approval":
        return f"conveyor approve {build_id} {printable(job.name)}"
    message = printable(job.message)
    if job.reason and message and state != "waiting":
        return f"{job.reason}: {message}"
    return message or job.reason
