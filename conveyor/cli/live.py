"""The live view of a followed build on a terminal: log lines scroll above a summary of the jobs
(state, attempt, time, what each waits for) that is redrawn in place, at most ten times a second.

Only the follower's thread changes the view's state and only the drawing thread writes to the
terminal, both under one lock: a burst of log lines becomes one write per redraw, and a slow
terminal slows the follower down instead of piling lines up in memory.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.fold import StepLogs
from conveyor.cli.progress import QUIET_ENDS, running_jobs
from conveyor.cli.summary import Summary
from conveyor.cli.terminal import JobStyles, status_style
from conveyor.v1 import control_pb2

REDRAW_INTERVAL_S = 0.1
# With nothing new, the summary is still redrawn this often: its running times move on.
IDLE_REDRAW_INTERVAL_S = 1.0
# Lines waiting for the next redraw; past this they are counted, not kept (`conveyor logs` has
# them all).
MAX_PENDING_LINES = 5000
_FINAL_JOB_STATES = frozenset({"succeeded", "failed", "canceled", "skipped"})


def live_console(colours: bool) -> Console:
    return Console(
        force_terminal=True,
        # Without a colour system rich writes no colour codes at all, only cursor movement.
        color_system="standard" if colours else None,
        no_color=not colours,
        markup=False,
        emoji=False,
        highlight=False,
    )


class LiveView:
    def __init__(self, console: Console, logs: str) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending: list[Text] = []
        self._not_shown = 0
        self._summary = Summary()
        self._styles = JobStyles()
        self._retries: set[tuple[str, int]] = set()
        self._states: dict[str, str] = {}
        self._failed_steps: set[tuple[str, int, int]] = set()
        self._quiet = False
        self._running = 0
        self._dirty = True
        self._logs = StepLogs(logs, self._emit, carriage=True)
        self._live = Live(
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._thread = threading.Thread(target=self._draw_loop, name="live-view", daemon=True)

    def __enter__(self) -> LiveView:
        self._live.start()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            if kind is None:
                self._logs.close()
            self._draw()
        self._live.stop()

    def prime(self, build: control_pb2.Build) -> None:
        """Takes `build` (before a retry) as already shown: only what changes after is said."""
        with self._lock:
            self._quiet = True
            try:
                self._take(build)
            finally:
                self._quiet = False

    def snapshot(self, build: control_pb2.Build) -> None:
        with self._lock:
            self._take(build)

    def log(self, chunk: control_pb2.LogChunk) -> None:
        key = (chunk.job, chunk.attempt_number, chunk.step_index)
        with self._lock:
            self._logs.chunk(key, chunk.step_name, chunk.data, self._running)

    def _take(self, build: control_pb2.Build) -> None:
        self._running = running_jobs(build)
        for job in build.jobs:
            style = self._styles.of(job.name)
            self._job_news(build.id, job, style)
        self._summary.update(build, self._styles)
        self._dirty = True

    def _job_news(self, build_id: int, job: control_pb2.Job, style: str) -> None:
        """Says what a line should say of `job`: a new attempt and why, a failed step, an
        approval to decide, its end; and ends its steps' logs."""
        status = wire.job_status_from_pb(job.status).value
        # Every attempt, not just the latest: two can go by between two snapshots.
        earlier: control_pb2.Attempt | None = None
        for attempt in job.attempts:
            if earlier is not None and (job.name, attempt.number) not in self._retries:
                self._retries.add((job.name, attempt.number))
                self._say(job.name, style, f"attempt {attempt.number} after {_why(earlier)}")
            for step in attempt.steps:
                self._step_news(job.name, style, attempt.number, step)
            earlier = attempt
        if self._states.get(job.name) == status:
            return
        self._states[job.name] = status
        if status == "waiting_for_approval":
            self._say(
                job.name,
                style,
                f"waiting for approval ({printable(job.approval.prompt)}); to decide, run: "
                f"conveyor approve {build_id} {job.name}  (or: conveyor reject ...)",
            )
        elif status in _FINAL_JOB_STATES:
            why = f" ({_why(job)})" if status in ("failed", "canceled") else ""
            self._say(job.name, style, status + why, status)

    def _step_news(self, job: str, style: str, attempt: int, step: control_pb2.Step) -> None:
        status = wire.step_status_from_pb(step.status).value
        if status in ("pending", "running"):
            return
        key = (job, attempt, step.index)
        self._logs.ended(key, step.name, failed=status not in QUIET_ENDS)
        if status == "failed" and key not in self._failed_steps:
            self._failed_steps.add(key)
            exit_code = f" (exit {step.exit_code})" if step.has_exit_code else ""
            self._say(f"{job}/{step.name}", style, f"failed{exit_code}", "failed")

    def _say(self, who: str, style: str, what: str, status: str = "") -> None:
        if self._quiet:
            return
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(printable(who), style=style)
        line.append(": ")
        line.append(what, style=status_style(status))
        self._add(line)

    def _emit(self, job: str, step_name: str, lines: list[bytes], note: str) -> None:
        prefix = Text(f"{printable(job)}/{printable(step_name)} | ", style=self._styles.of(job))
        if note:
            self._add(prefix + Text(note, style="dim"))
        for raw in lines:
            # Escape codes from a step's output would move the cursor under the summary.
            self._add(prefix + Text(printable(raw.decode("utf-8", "replace").expandtabs())))

    def _add(self, line: Text) -> None:
        if len(self._pending) >= MAX_PENDING_LINES:
            self._not_shown += 1
            return
        self._pending.append(line)

    def _draw_loop(self) -> None:
        drawn = 0.0
        while not self._stop.wait(REDRAW_INTERVAL_S):
            with self._lock:
                now = time.monotonic()
                if self._pending or self._dirty or now - drawn >= IDLE_REDRAW_INTERVAL_S:
                    self._draw()
                    drawn = now

    def _draw(self) -> None:
        """Prints the pending lines above the summary and redraws it (holding the lock)."""
        self._live.update(Group(*self._summary.render(self._console.size.height)), refresh=False)
        if self._not_shown:
            self._pending.append(
                Text(
                    f"… {self._not_shown} lines not shown (too fast to show; "
                    "`conveyor logs` has them)",
                    style="dim",
                )
            )
            self._not_shown = 0
        if self._pending:
            self._console.print(Text("\n").join(self._pending), crop=False, overflow="fold")
            self._pending.clear()
        else:
            self._live.refresh()
        self._dirty = False


def _why(source: control_pb2.Job | control_pb2.Attempt) -> str:
    """An attempt's or a job's end reason in words, as the coordinator gave it."""
    reason = source.reason.replace("_", " ") or "an unknown reason"
    if source.reason == "exit_code" and source.has_exit_code:
        reason = f"exit code {source.exit_code}"
    message = printable(source.message)
    return f"{reason}: {message}" if message and source.reason != "exit_code" else reason
