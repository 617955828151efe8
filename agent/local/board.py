"""The local build's state as the CLI shows any build (a `control_pb2.Build`), and who hears of
its changes: every change and every log chunk is passed on, one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from conveyor import wire
from conveyor.pipeline import JobDef, Pipeline
from conveyor.states import BuildStatus, JobStatus, Outcome, StepStatus
from conveyor.v1 import control_pb2

Listener = Callable[[control_pb2.Build], None]
LogListener = Callable[[control_pb2.LogChunk], None]

_STEP_OF = {
    Outcome.SUCCEEDED: StepStatus.SUCCEEDED,
    Outcome.FAILED: StepStatus.FAILED,
    Outcome.CANCELED: StepStatus.CANCELED,
}
_JOB_OF = {
    Outcome.SUCCEEDED: JobStatus.SUCCEEDED,
    Outcome.FAILED: JobStatus.FAILED,
    Outcome.CANCELED: JobStatus.CANCELED,
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class Board:
    def __init__(
        self,
        build_id: int,
        pipeline: Pipeline,
        jobs: list[JobDef],
        on_change: Listener,
        on_log: LogListener,
    ) -> None:
        self._lock = threading.Lock()
        self._on_change = on_change
        self._on_log = on_log
        self.build = control_pb2.Build(
            id=build_id,
            name=pipeline.name,
            status=wire.build_status_to_pb(BuildStatus.RUNNING),
            created_at_ms=_now_ms(),
            context=control_pb2.BuildContext(event="manual"),
        )
        for job in jobs:
            self.build.jobs.add(
                name=job.name,
                status=wire.job_status_to_pb(JobStatus.WAITING),
                needs=list(job.needs),
                labels=dict(job.labels),
                step_names=[step.name for step in job.steps],
            )

    def _job(self, name: str) -> control_pb2.Job:
        return next(job for job in self.build.jobs if job.name == name)

    def _changed(self) -> None:
        snapshot = control_pb2.Build()
        snapshot.CopyFrom(self.build)
        self._on_change(snapshot)

    def status(self, name: str) -> JobStatus:
        with self._lock:
            return wire.job_status_from_pb(self._job(name).status)

    def reason(self, name: str) -> str:
        with self._lock:
            return self._job(name).reason

    def start_attempt(self, name: str, attempt_id: int, number: int, agent: str) -> None:
        with self._lock:
            job = self._job(name)
            job.status = wire.job_status_to_pb(JobStatus.RUNNING)
            job.reason = job.message = ""
            attempt = job.attempts.add(
                id=attempt_id, number=number, agent_name=agent, started_at_ms=_now_ms()
            )
            for index, step in enumerate(job.step_names):
                attempt.steps.add(
                    index=index, name=step, status=wire.step_status_to_pb(StepStatus.PENDING)
                )
            self._changed()

    def start_step(self, name: str, index: int) -> None:
        with self._lock:
            step = self._job(name).attempts[-1].steps[index]
            step.status = wire.step_status_to_pb(StepStatus.RUNNING)
            step.started_at_ms = _now_ms()
            self._changed()

    def log(self, name: str, index: int, offset: int, data: bytes) -> None:
        with self._lock:
            attempt = self._job(name).attempts[-1]
            step = attempt.steps[index]
            step.log_length = offset + len(data)
            chunk = control_pb2.LogChunk(
                job=name,
                attempt_number=attempt.number,
                step_index=index,
                step_name=step.name,
                offset=offset,
                data=data,
            )
            self._on_log(chunk)

    def finish_step(
        self, name: str, index: int, outcome: Outcome, exit_code: int | None, lost: int
    ) -> None:
        with self._lock:
            step = self._job(name).attempts[-1].steps[index]
            step.status = wire.step_status_to_pb(_STEP_OF[outcome])
            step.finished_at_ms = _now_ms()
            step.log_lost_bytes = lost
            if exit_code is not None:
                step.exit_code, step.has_exit_code = exit_code, True
            self._changed()

    def finish_attempt(
        self, name: str, outcome: Outcome, reason: str, message: str, exit_code: int | None
    ) -> None:
        with self._lock:
            job = self._job(name)
            attempt = job.attempts[-1]
            attempt.outcome = wire.outcome_to_pb(outcome)
            attempt.reason, attempt.message = reason, message
            attempt.finished_at_ms = _now_ms()
            for step in attempt.steps:
                if not wire.step_status_from_pb(step.status).final:
                    step.status = wire.step_status_to_pb(StepStatus.SKIPPED)
            job.status = wire.job_status_to_pb(_JOB_OF[outcome])
            job.reason, job.message = reason, message
            if exit_code is not None:
                attempt.exit_code, attempt.has_exit_code = exit_code, True
                job.exit_code, job.has_exit_code = exit_code, True
            self._changed()

    def settle(self, name: str, status: JobStatus, reason: str = "", message: str = "") -> None:
        """A job that runs no attempt here: skipped, or a gate passed with --approve-all."""
        with self._lock:
            job = self._job(name)
            job.status = wire.job_status_to_pb(status)
            job.reason, job.message = reason, message
            self._changed()

    def end(self) -> control_pb2.Build:
        """Final: failed if any job failed, canceled if any was, else succeeded."""
        with self._lock:
            states = {wire.job_status_from_pb(job.status) for job in self.build.jobs}
            status = BuildStatus.SUCCEEDED
            if JobStatus.CANCELED in states:
                status = BuildStatus.CANCELED
            elif JobStatus.FAILED in states:
                status = BuildStatus.FAILED
            self.build.status = wire.build_status_to_pb(status)
            self.build.finished_at_ms = _now_ms()
            self._changed()
            final = control_pb2.Build()
            final.CopyFrom(self.build)
            return final
