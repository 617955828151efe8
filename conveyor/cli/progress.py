"""Live progress of a followed build: state changes as lines, log lines prefixed by job/step."""

from __future__ import annotations

import sys
import time
from typing import BinaryIO, TextIO

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.terminal import colour
from conveyor.v1 import control_pb2


class Progress:
    def __init__(self, out: TextIO = sys.stdout, show_logs: bool = True) -> None:
        self._out = out
        self._raw: BinaryIO = out.buffer if hasattr(out, "buffer") else sys.stdout.buffer
        self._show_logs = show_logs
        self._seen: dict[str, str] = {}
        self._partial: dict[tuple[str, int, int], bytes] = {}
        self._quiet = False

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
                if step_status != "running":
                    self._flush_partial((job.name, attempt.number, step.index), step.name)
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
        data = self._partial.pop(key, b"") + chunk.data
        lines = data.split(b"\n")
        self._partial[key] = lines.pop()
        prefix = f"{chunk.job}/{chunk.step_name} | ".encode()
        if lines:
            self._out.flush()
            self._raw.write(b"".join(prefix + line + b"\n" for line in lines))
            self._raw.flush()

    def _flush_partial(self, key: tuple[str, int, int], step_name: str) -> None:
        rest = self._partial.pop(key, b"")
        if rest:
            self._out.flush()
            self._raw.write(f"{key[0]}/{step_name} | ".encode() + rest + b"\n")
            self._raw.flush()
