"""Runs a pipeline's jobs one at a time in `needs` order on this machine: each attempt goes
through the agent's AttemptRunner with a LocalPeer in the coordinator's place."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.attempt import AttemptRunner
from agent.config import EXEC_JOIN_TICK_S, EXEC_STOP_GRACE_S, SPOOL_LIMIT_BYTES
from agent.executors.base import Executor
from agent.local.board import Board
from agent.local.peer import LocalPeer
from agent.peer import Assignment, GitSource, Inputs, Lease, NeededArtifact, Snapshot, StepSpec
from conveyor.pipeline import JobDef, Pipeline, resolve_steps
from conveyor.states import JobStatus, Reason

LOGGER = logging.getLogger(__name__)

EXEC_BUILD_ID = 1
"""Local builds have no coordinator to number them: each is build 1 of its own."""


@dataclass(frozen=True)
class Plan:
    """What one `conveyor exec` runs and with what."""

    pipeline: Pipeline
    jobs: list[JobDef]  # in an order where every job comes after what it needs
    env: Mapping[str, str]
    secrets: Mapping[str, str]
    source: Snapshot | GitSource | None
    default_image: str
    agent_name: str
    spool_dir: Path
    grace_s: float = EXEC_STOP_GRACE_S


def admitted(job: JobDef) -> bool:
    """A job's `when:` for a local build: event `manual`, on no branch and no tag."""
    condition = job.when
    if condition is None:
        return True
    if condition.branch or condition.tag:
        return False
    return not condition.event or any(fnmatch.fnmatchcase("manual", e) for e in condition.event)


class LocalRun:
    def __init__(self, plan: Plan, executor: Executor, peer: LocalPeer, board: Board) -> None:
        self._plan = plan
        self._executor = executor
        self._peer = peer
        self._board = board
        self._produced: dict[str, tuple[NeededArtifact, ...]] = {}
        self._next_attempt = 0

    def run(self) -> None:
        for job in self._plan.jobs:
            if self._peer.cancel.is_set():
                self._board.settle(job.name, JobStatus.CANCELED, Reason.CANCELED, "canceled")
            elif not admitted(job):
                message = "its `when:` is false for a local build (event manual, no branch)"
                self._board.settle(job.name, JobStatus.SKIPPED, Reason.CONDITION, message)
            elif not all(self._board.status(need) is JobStatus.SUCCEEDED for need in job.needs):
                failed = [n for n in job.needs if self._board.status(n) is not JobStatus.SUCCEEDED]
                message = f"needed job {failed[0]!r} did not succeed"
                self._board.settle(job.name, JobStatus.SKIPPED, Reason.DEPENDENCY_FAILED, message)
            elif job.approval is not None:
                # Only reached with --approve-all: exec refuses gates otherwise.
                self._produced[job.name] = self._received(job)
                self._board.settle(job.name, JobStatus.SUCCEEDED, "", "approved by --approve-all")
            else:
                self._run_job(job)

    def _received(self, job: JobDef) -> tuple[NeededArtifact, ...]:
        return tuple(a for need in job.needs for a in self._produced.get(need, ()))

    def _run_job(self, job: JobDef) -> None:
        for number in range(1, job.retry.max + 2):
            attempt = self._attempt(job, number)
            reason = self._board.reason(job.name)
            if self._board.status(job.name) is JobStatus.SUCCEEDED:
                self._produced[job.name] = tuple(attempt)
                return
            if reason not in job.retry.when or self._peer.cancel.is_set():
                return

    def _attempt(self, job: JobDef, number: int) -> list[NeededArtifact]:
        self._next_attempt += 1
        lease = Lease(self._next_attempt, "local")
        plan = self._plan
        inputs = Inputs(
            source=plan.source,
            needed=self._received(job),
            artifact_paths=job.artifacts.paths,
            artifacts_always=job.artifacts.when == "always",
        )
        local = self._peer.open(lease, job.name, inputs)
        runner = AttemptRunner(
            self._assignment(job, lease, number),
            self._peer,
            self._executor,
            plan.agent_name,
            plan.spool_dir,
            plan.grace_s,
            SPOOL_LIMIT_BYTES,
            default_image=plan.default_image,
            # The developer's own machine and files: a local repository is theirs to build.
            allow_local_git=True,
        )
        self._board.start_attempt(job.name, lease.attempt_id, number, plan.agent_name)
        done = threading.Event()

        def run() -> None:
            try:
                runner.run()
            finally:
                done.set()

        threading.Thread(target=run, name=f"exec-{job.name}", daemon=True).start()
        try:
            while not done.wait(EXEC_JOIN_TICK_S):
                pass
        except KeyboardInterrupt:
            # Stops the step as `conveyor cancel` would (SIGTERM, grace, SIGKILL), then reports.
            # An event, not Thread.join: a join that Ctrl-C cut short may not wait again.
            self._peer.cancel.set()
            runner.cancel()
            done.wait()
        return local.produced

    def _assignment(self, job: JobDef, lease: Lease, number: int) -> Assignment:
        steps = tuple(
            StepSpec(s.name, s.image, s.run, s.env, s.timeout_s, s.user)
            for s in resolve_steps(self._plan.pipeline, job, self._plan.env)
        )
        return Assignment(
            lease=lease,
            build_id=EXEC_BUILD_ID,
            job_name=job.name,
            attempt_number=number,
            steps=steps,
            timeout_s=job.timeout_s,
            secrets={name: self._plan.secrets[name] for name in job.secrets},
            privileged=job.privileged,
            environment=job.environment.name if job.environment else "",
        )
