"""Runs one attempt: its steps in order in one workspace, logs shipped, the result reported once."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent import metrics
from agent.config import LOG_DRAIN_TIMEOUT_S, MASK_HOLD_S
from agent.executors.base import (
    AttemptInfo,
    Executor,
    ExecutorError,
    StepControl,
    StepRequest,
    StepResult,
)
from agent.logship import LogShipper
from agent.masking import masked_sink, masked_values
from agent.peer import (
    Assignment,
    FencedError,
    Inputs,
    JoinRefusedError,
    Peer,
    StepReport,
    StepSpec,
    Verdict,
)
from agent.stepenv import step_env, step_variables
from agent.transfer import StoppedError, TransferError, Transfers
from agent.verdicts import SUCCESS, judge_step, with_log_loss
from agent.workroom import WorkDirRoom
from conveyor.states import Outcome, Reason

LOGGER = logging.getLogger(__name__)

# How often a step about to start looks whether its lease was renewed again after an outage.
LEASE_WAIT_CHECK_S = 0.1


class AttemptRunner:
    def __init__(
        self,
        assignment: Assignment,
        peer: Peer,
        executor: Executor,
        agent_name: str,
        spool_dir: Path,
        grace_s: float,
        spool_limit: int,
        *,
        lease_fresh: Callable[[], bool] = lambda: True,
        room: WorkDirRoom | None = None,
        allow_local_git: bool = False,
        default_image: str = "",
    ) -> None:
        """`lease_fresh` says whether a renewal was confirmed recently enough to start a step;
        `room` hears when the spool finds the disk full; `allow_local_git` lets a git source be
        a repository on this host; `default_image` serves steps whose pipeline names none
        ("": the executor needs no image)."""
        self._allow_local_git = allow_local_git
        self._default_image = default_image
        self.assignment = assignment
        self.lease = assignment.lease
        self._peer = peer
        self._executor = executor
        self._info = AttemptInfo(
            assignment.lease.attempt_id, assignment.build_id, assignment.job_name, agent_name
        )
        self._spool_dir = spool_dir / str(assignment.lease.attempt_id)
        self._grace_s = grace_s
        self._stop = threading.Event()
        self._stop_verdict: Verdict | None = None
        self._lost = threading.Event()
        # Set while a step's process lives: only then can a missed renewal mean two of them.
        self._in_step = threading.Event()
        self._lease_fresh = lease_fresh
        self._room = room
        self._spool_disk_full = False
        self._control: StepControl | None = None
        self._spool_limit = spool_limit
        self._lost_log_bytes: dict[str, int] = {}
        # Set once the inputs are known: what the last step's log needs to say about artifacts.
        self._transfers: Transfers | None = None
        self._inputs: Inputs | None = None
        # The end of the step that ran last, sent with the attempt's finish (one call less).
        self._last_report: StepReport | None = None
        self._masked = masked_values(assignment.secrets.values())
        # Known once the source is in place (the commit a git source resolved to).
        self._variables = step_variables(assignment, "")
        self._label = (
            f"build {assignment.build_id} job {assignment.job_name} "
            f"attempt {assignment.attempt_number}"
        )

    def cancel(self) -> None:
        """A user canceled the build: stop the step with grace; the attempt ends canceled."""
        self._stop_with(Verdict(Outcome.CANCELED, Reason.CANCELED, "canceled by a user"))

    def abandon(self, message: str) -> None:
        """The agent is stopping: the attempt fails with agent_stopped (retried per its rule)."""
        self._stop_with(Verdict(Outcome.FAILED, Reason.AGENT_STOPPED, message))

    def _stop_with(self, verdict: Verdict) -> None:
        if self._stop_verdict is None:
            self._stop_verdict = verdict
        self._stop.set()

    def lose(self) -> None:
        """The lease is gone: kill the containers now (no grace) and report nothing.

        No grace: the coordinator may soon hand the job to another agent, and a step that
        ignores SIGTERM must not outlive the lease.
        """
        if self._control is not None:
            self._control.grace_s = 0.0
        self._grace_s = 0.0
        self._lost.set()
        self._stop.set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    @property
    def running_step(self) -> bool:
        """Whether a step's process may be alive now (not before, between or after steps)."""
        return self._in_step.is_set()

    def run(self) -> None:
        LOGGER.info("%s: starting (%d steps)", self._label, len(self.assignment.steps))
        try:
            verdict = self._run_steps()
            if not self.lost:
                self._finish(
                    with_log_loss(verdict, self._lost_log_bytes, disk=self._spool_disk_full)
                )
        except FencedError as error:
            LOGGER.warning("%s: no longer ours (%s); its result is dropped", self._label, error)
        except JoinRefusedError:
            raise
        except Exception as error:
            if self.lost:
                LOGGER.warning("%s: lease lost; stopped without reporting", self._label)
            else:
                LOGGER.exception("%s: failed unexpectedly", self._label)
                self._report_error(error)
        finally:
            self._cleanup()

    def _report_error(self, error: Exception) -> None:
        """Says what broke rather than going silent (which would look like agent_lost)."""
        self._stop.set()
        verdict = Verdict(Outcome.FAILED, Reason.ERROR, f"agent error: {error}")
        try:
            self._finish(verdict)
        except Exception:  # the lease decides now; the agent's log has the details
            LOGGER.exception("%s: could not report the error", self._label)

    def _run_steps(self) -> Verdict:
        try:
            self._executor.prepare_attempt(self._info)
        except ExecutorError as error:
            return Verdict(Outcome.FAILED, Reason.ERROR, f"workspace: {error}")
        transfers = Transfers(
            self._peer,
            self._executor,
            self._info,
            self.lease,
            self._stop,
            allow_local_git=self._allow_local_git,
        )
        # Sent along with the assignment by a coordinator that can: one round trip less.
        inputs = self.assignment.inputs or transfers.inputs()
        try:
            commit = transfers.prepare(inputs)
        except StoppedError:
            return self._stop_verdict or Verdict(Outcome.CANCELED, Reason.CANCELED)
        except TransferError as error:
            return Verdict(Outcome.FAILED, error.reason, str(error))
        self._transfers, self._inputs = transfers, inputs
        self._variables = step_variables(self.assignment, commit)
        verdict = self._steps()
        return self._collect(transfers, inputs, verdict)

    def _collect(self, transfers: Transfers, inputs: Inputs, verdict: Verdict) -> Verdict:
        """Artifacts after the steps: on success, or also on failure with `when: always`.

        A lost lease needs no check here: the stop it sets ends the transfer at once, and the
        coordinator fences the upload anyway."""
        succeeded = verdict.outcome == Outcome.SUCCEEDED
        failed = verdict.outcome == Outcome.FAILED
        if not (succeeded or (failed and inputs.artifacts_always)):
            return verdict
        try:
            transfers.collect(inputs)
        except StoppedError:
            return self._stop_verdict or verdict
        except TransferError as error:
            LOGGER.warning("%s: %s", self._label, error)
            if succeeded:
                return Verdict(Outcome.FAILED, error.reason, str(error))
        return verdict

    def _steps(self) -> Verdict:
        timeout_s = self.assignment.timeout_s
        deadline = time.monotonic() + timeout_s if timeout_s else None
        for index, spec in enumerate(self.assignment.steps):
            if self._stop.is_set():
                break
            verdict = self._run_step(index, spec, deadline)
            if verdict is not SUCCESS:
                return verdict
        if self._stop.is_set() and self._stop_verdict is not None:
            return self._stop_verdict
        return Verdict(Outcome.SUCCEEDED, exit_code=0)

    def _run_step(self, index: int, spec: StepSpec, deadline: float | None) -> Verdict:
        if self._peer.start_step(self.lease, index, give_up=self._lost):
            self.cancel()
        step_deadline = deadline
        if spec.timeout_s:
            own = time.monotonic() + spec.timeout_s
            step_deadline = own if deadline is None else min(deadline, own)
        control = StepControl(stop=self._stop, deadline=step_deadline, grace_s=self._grace_s)
        self._control = control
        env = step_env(spec.env, self.assignment.secrets, self._variables)
        request = StepRequest(
            index,
            spec.name,
            spec.image or self._default_image,
            spec.run,
            env,
            user=spec.user,
            privileged=self.assignment.privileged,
        )
        shipper = LogShipper(
            self._peer,
            self.lease,
            index,
            self._spool_dir / f"{index}.log",
            limit=self._spool_limit,
            interrupt=self._lost,
            on_disk_full=lambda spooled: self._disk_full(spec.name, spooled),
        )
        self._say_default_image(spec, shipper)
        self._await_fresh_lease()
        result = self._execute(request, shipper, control)
        return self._end_step(index, spec, result, shipper)

    def _say_default_image(self, spec: StepSpec, shipper: LogShipper) -> None:
        # The build keeps the pipeline image-less: the step's log says what it ran in.
        if not spec.image and self._default_image:
            image = self._default_image
            shipper.write(
                f"conveyor: no image named; using this agent's default {image}\n".encode()
            )

    def _execute(
        self, request: StepRequest, shipper: LogShipper, control: StepControl
    ) -> StepResult:
        """Runs the step with its output masked before the spool sees a byte of it (without
        secrets nothing stands between)."""
        self._in_step.set()
        try:
            with masked_sink(self._masked, shipper.write, MASK_HOLD_S) as sink:
                try:
                    return self._executor.run_step(self._info, request, sink, control)
                finally:
                    self._in_step.clear()
        except BaseException:
            shipper.discard()  # its descriptors would keep the spool's disk space
            raise

    def _end_step(
        self, index: int, spec: StepSpec, result: StepResult, shipper: LogShipper
    ) -> Verdict:
        """Delivers the rest of the step's log and reports how the step ended."""
        verdict = judge_step(spec.name, result, self._stop_verdict)
        if self._collects_after(index, verdict):
            # Said in the job's log (the end of the step that ran last), not only on the agent.
            for line in self._artifact_notices():
                shipper.write(line)
        if not shipper.close(LOG_DRAIN_TIMEOUT_S) and not self.lost:
            return Verdict(
                Outcome.FAILED,
                Reason.ERROR,
                f"step '{spec.name}': its log could not be delivered",
            )
        if shipper.lost_bytes:
            self._lost_log_bytes[spec.name] = shipper.lost_bytes
        if not self.lost:
            report = StepReport(
                index, verdict, result.exit_code, shipper.length, shipper.lost_bytes
            )
            if self._ends_attempt(index, verdict):
                self._last_report = report
            else:
                self._peer.finish_step(self.lease, report, give_up=self._lost)
        metrics.STEPS.labels(verdict.outcome.value).inc()
        return verdict

    def _disk_full(self, step_name: str, spooled: int) -> None:
        """The spool's disk is full: the step's further output would be lost, so it stops."""
        self._spool_disk_full = True
        if self._room is not None:
            self._room.ran_out(spooled)
        where = self._spool_dir.parent
        self._stop_with(
            Verdict(
                Outcome.FAILED,
                Reason.ERROR,
                f"agent spool disk full: no room left in {where} for step '{step_name}''s "
                "log; the step was stopped",
            )
        )

    def _await_fresh_lease(self) -> None:
        """After an outage the last confirmed renewal is old: a step started now would be
        stopped at once as unrenewed, so it waits for the next renewal (or a stop) instead."""
        while not self._lease_fresh() and not self._stop.wait(LEASE_WAIT_CHECK_S):
            pass

    def _ends_attempt(self, index: int, verdict: Verdict) -> bool:
        """Whether nothing of the attempt comes after this step (no step, no upload), so its
        end can go with the attempt's."""
        last_to_run = verdict is not SUCCESS or index == len(self.assignment.steps) - 1
        return (last_to_run or self._stop.is_set()) and not self._collects_after(index, verdict)

    def _collects_after(self, index: int, verdict: Verdict) -> bool:
        """Whether this step is the last to run and artifacts are collected after it."""
        inputs = self._inputs
        if inputs is None or not inputs.artifact_paths or self._stop.is_set():
            return False
        if verdict is SUCCESS:
            return index == len(self.assignment.steps) - 1
        return verdict.outcome == Outcome.FAILED and inputs.artifacts_always

    def _artifact_notices(self) -> list[bytes]:
        if self._transfers is None or self._inputs is None:
            return []
        unmatched = self._transfers.unmatched(self._inputs)
        for pattern in unmatched:
            LOGGER.warning("%s: artifact pattern %r matched no file", self._label, pattern)
        return [f"conveyor: artifact pattern '{p}' matched no file\n".encode() for p in unmatched]

    def _finish(self, verdict: Verdict) -> None:
        # Keeps trying through outages, however long: no step runs any more, so the lease
        # watchdog leaves the attempt be, and the coordinator fences a report that came too late.
        recorded = self._peer.finish_attempt(
            self.lease, verdict, give_up=self._lost, last_step=self._last_report
        )
        LOGGER.info("%s: finished %s %s", self._label, recorded.outcome, recorded.reason)

    def _cleanup(self) -> None:
        try:
            self._executor.cleanup_attempt(self._info)
        except ExecutorError as error:
            LOGGER.warning("%s: cleanup failed: %s", self._label, error)
        shutil.rmtree(self._spool_dir, ignore_errors=True)
