"""What an attempt's end means for its job, and what a manual retry re-runs: pure functions.

The store reads the facts inside its transaction, asks these, and writes what they decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conveyor.states import JobStatus, Outcome, Reason, StepStatus


@dataclass(frozen=True)
class JobTally:
    """A job's counters and retry rule, as settling an attempt needs them."""

    attempt_count: int
    # Attempts not counted against the retry rule (before a manual retry, or never started).
    retry_base: int
    unstarted_requeues: int
    retry_max: int
    retry_when: tuple[str, ...]


@dataclass(frozen=True)
class EndedAttempt:
    number: int
    outcome: Outcome
    reason: str
    message: str
    # Whether any of its steps had started: an unstarted attempt repeated no side effect.
    started: bool


@dataclass(frozen=True)
class Settlement:
    status: JobStatus
    reason: str
    message: str
    # The attempt is not counted against the job's retry rule (a free re-queue).
    free: bool = False


def should_retry(
    *, reason: str, attempts_used: int, retry_max: int, retry_when: Sequence[str]
) -> bool:
    """A new attempt is made only when the job's retry rule names this reason and allows more."""
    return reason in retry_when and attempts_used <= retry_max


def settle(
    job: JobTally, attempt: EndedAttempt, *, build_canceling: bool, max_free_requeues: int
) -> Settlement:
    """The job's next status once `attempt` (its current one) has ended."""
    if attempt.outcome is Outcome.SUCCEEDED:
        return Settlement(JobStatus.SUCCEEDED, "", attempt.message)
    if attempt.outcome is Outcome.CANCELED or build_canceling:
        return Settlement(JobStatus.CANCELED, attempt.reason or "canceled", attempt.message)
    if (
        attempt.reason == Reason.AGENT_LOST
        and not attempt.started
        and job.unstarted_requeues < max_free_requeues
    ):
        # The agent vanished before running anything (e.g. the assignment never reached it):
        # running it elsewhere cannot repeat a side effect, so it does not use up a retry.
        message = f"attempt {attempt.number} never started on its agent; queued again"
        return Settlement(JobStatus.QUEUED, attempt.reason, message, free=True)
    if should_retry(
        reason=attempt.reason,
        attempts_used=job.attempt_count - job.retry_base,
        retry_max=job.retry_max,
        retry_when=job.retry_when,
    ):
        message = f"attempt {attempt.number} ended with {attempt.reason}; retrying"
        return Settlement(JobStatus.QUEUED, attempt.reason, message)
    return Settlement(JobStatus.FAILED, attempt.reason, attempt.message)


def close_steps(statuses: Sequence[StepStatus], outcome: Outcome) -> list[StepStatus]:
    """The final status of each step of an ended attempt: unstarted ones skipped, running ones
    ended as the attempt did."""
    lost = StepStatus.CANCELED if outcome is Outcome.CANCELED else StepStatus.FAILED
    closed = {StepStatus.PENDING: StepStatus.SKIPPED, StepStatus.RUNNING: lost}
    return [closed.get(status, status) for status in statuses]


class RetryRefused(ValueError):
    """A retry that cannot be done; `unknown_job` tells a missing job from a wrong moment."""

    def __init__(self, message: str, *, unknown_job: bool = False) -> None:
        super().__init__(message)
        self.unknown_job = unknown_job


@dataclass(frozen=True)
class RetryCandidate:
    name: str
    status: JobStatus
    needs: tuple[str, ...]
    reason: str = ""

    @property
    def condition_skipped(self) -> bool:
        return self.status is JobStatus.SKIPPED and self.reason == Reason.CONDITION


def retry_targets(jobs: Sequence[RetryCandidate], job_name: str | None, build_id: int) -> set[str]:
    """The jobs a retry re-runs: the named one (or every unsuccessful one) and their dependents."""
    by_name = {job.name: job for job in jobs}
    if job_name is not None:
        job = by_name.get(job_name)
        if job is None:
            raise RetryRefused(f"build {build_id} has no job '{job_name}'", unknown_job=True)
        if not job.status.final:
            raise RetryRefused(
                f"job '{job_name}' is {job.status}; only a finished job can be retried"
            )
        if job.condition_skipped:
            raise RetryRefused(f"job '{job_name}' is not meant to run in this build: {job.reason}")
        targets = {job_name}
    else:
        if any(not job.status.final for job in jobs):
            raise RetryRefused(
                f"build {build_id} is still running; cancel it or wait for it to end"
            )
        targets = {
            job.name
            for job in jobs
            if job.status is not JobStatus.SUCCEEDED and not job.condition_skipped
        }
        if not targets:
            raise RetryRefused(f"build {build_id} succeeded; there is nothing to retry")
    # A condition decided at creation stays decided: re-running a need does not make it true.
    targets |= _dependents(jobs, targets)
    targets -= {job.name for job in jobs if job.condition_skipped}
    # Re-running a job re-runs what needs it; one of those still running would get a second
    # live attempt, so the retry waits until they have ended.
    busy = sorted(name for name in targets if not by_name[name].status.final)
    if busy:
        raise RetryRefused(
            f"cannot retry yet: {', '.join(busy)} still running or queued; "
            "cancel the build or wait for it to end"
        )
    return targets


def _dependents(jobs: Sequence[RetryCandidate], roots: set[str]) -> set[str]:
    found: set[str] = set()
    grew = True
    while grew:
        reached = roots | found
        more = {job.name for job in jobs if set(job.needs) & reached} - reached
        found |= more
        grew = bool(more)
    return found
