"""Progress of a followed build as plain lines (not a terminal): state changes as lines, log
lines prefixed by job/step (coloured per job with `--color always`), `--logs` applied."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import BinaryIO, TextIO

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.fold import StepLogs
from conveyor.cli.terminal import JobStyles, colour, coloured, styled
from conveyor.v1 import control_pb2

# A step that ends in one of these shows no held lines under `--logs failed`.
QUIET_ENDS = frozenset({"succeeded", "skipped"})


def running_jobs(build: control_pb2.Build) -> int:
    return sum(1 for job in build.jobs if wire.job_status_from_pb(job.status).value == "running")


class Progress:
    def __init__(self, out: TextIO = sys.stdout, show_logs: bool = True, logs: str = "all") -> None:
        self._out = out
        self._raw: BinaryIO = out.buffer if hasattr(out, "buffer") else sys.stdout.buffer
        self._show_logs = show_logs
        self._seen: dict[str, str] = {}
        self._quiet = False
        self._logs = StepLogs(logs, self._emit)
        self._running = 0
        self._colours = styled(out)
        self._job_styles = JobStyles()
        self._prefixes: dict[tuple[str, str], bytes] = {}

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None and self._show_logs:
            self._logs.close()

    def _say(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {text}", file=self._out, flush=True)

    def prime(self, build: control_pb2.Build) -> None:
        """Takes the jobs' and steps' states in `build` as already shown (before a retry), so
        only what changes after it is printed; the build's own end is still announced."""
        self._quiet = True
        try:
            self._jobs(build)
        finally:
            self._quiet = False

    def snapshot(self, build: control_pb2.Build) -> None:
        self._running = running_jobs(build)
        for job in build.jobs:
            self._job_styles.of(job.name)
        self._jobs(build)
        status = wire.build_status_from_pb(build.status)
        if status.final:
            self._announce("build", status.value, lambda s: f"build {build.id} {colour(s, s)}")

    def _jobs(self, build: control_pb2.Build) -> None:
        for job in build.jobs:
            status = wire.job_status_from_pb(job.status).value
            self._announce(
                f"job:{job.name}", status, lambda s, j=job: self._job_line(j, s, build.id)
            )
            if not job.attempts:
                continue
            attempt = job.attempts[-1]
            for step in attempt.steps:
                step_status = wire.step_status_from_pb(step.status).value
                if step_status == "pending":
                    continue
                key = f"step:{job.name}:{attempt.number}:{step.index}"
                if step_status != "running" and self._show_logs:
                    self._logs.ended(
                        (job.name, attempt.number, step.index),
                        step.name,
                        failed=step_status not in QUIET_ENDS,
                    )
                self._announce(
                    key, step_status, lambda s, j=job, st=step: self._step_line(j, st, s)
                )

    def _announce(self, key: str, status: str, line: object) -> None:
        if self._seen.get(key) == status:
            return
        self._seen[key] = status
        if self._quiet:
            return
        assert callable(line)
        self._say(line(status))

    def _job_line(self, job: control_pb2.Job, status: str, build_id: int) -> str:
        text = f"{job.name}: {colour(status, status)}"
        if status == "waiting_for_approval":
            # The person following is often the one to decide: say exactly what to type.
            text += (
                f" ({printable(job.approval.prompt)}); to decide, run:"
                f" conveyor approve {build_id} {job.name}  (or: conveyor reject ...)"
            )
        elif status == "running" and job.attempts:
            attempt = job.attempts[-1]
            text += f" on {printable(attempt.agent_name)} (attempt {attempt.number})"
        elif job.message:
            message = printable(job.message)
            text += f" ({job.reason}: {message})" if job.reason else f" ({message})"
        elif job.reason:
            text += f" ({job.reason})"
        return text

    def _step_line(self, job: control_pb2.Job, step: control_pb2.Step, status: str) -> str:
        text = f"{job.name}/{step.name}: {colour(status, status)}"
        if step.has_exit_code and status != "running":
            text += f" (exit {step.exit_code})"
        return text

    def log(self, chunk: control_pb2.LogChunk) -> None:
        if not self._show_logs:
            return
        key = (chunk.job, chunk.attempt_number, chunk.step_index)
        self._logs.chunk(key, chunk.step_name, chunk.data, self._running)

    def _prefix(self, job: str, step_name: str) -> bytes:
        prefix = self._prefixes.get((job, step_name))
        if prefix is None:
            text = f"{job}/{step_name} | "
            if self._colours:
                text = coloured(text, self._job_styles.of(job))
            prefix = self._prefixes[(job, step_name)] = text.encode()
        return prefix

    def _emit(self, job: str, step_name: str, lines: list[bytes], note: str) -> None:
        prefix = self._prefix(job, step_name)
        if note:
            lines = [note.encode()]
        self._out.flush()
        self._raw.write(b"".join(prefix + line + b"\n" for line in lines))
        self._raw.flush()
