"""The retry and settle policy as pure functions: no store, no clock."""

from __future__ import annotations

import pytest

from conveyor.states import JobStatus, Outcome, Reason, StepStatus
from coordinator.policy.retry import (
    EndedAttempt,
    JobTally,
    RetryCandidate,
    RetryRefused,
    close_steps,
    retry_targets,
    settle,
)


def tally(*, count: int = 1, base: int = 0, free: int = 0, retry_max: int = 0) -> JobTally:
    return JobTally(count, base, free, retry_max, (Reason.AGENT_LOST, Reason.TIMEOUT))


def ended(outcome: Outcome, reason: str = "", *, started: bool = True) -> EndedAttempt:
    return EndedAttempt(1, outcome, reason, "said the agent", started)


def test_success_and_failure_settle_the_job() -> None:
    done = settle(tally(), ended(Outcome.SUCCEEDED), build_canceling=False, max_free_requeues=3)
    assert (done.status, done.reason, done.message) == (JobStatus.SUCCEEDED, "", "said the agent")
    failed = settle(
        tally(), ended(Outcome.FAILED, Reason.EXIT_CODE), build_canceling=False, max_free_requeues=3
    )
    assert (failed.status, failed.reason) == (JobStatus.FAILED, Reason.EXIT_CODE)


def test_a_canceling_build_cancels_whatever_the_attempt_says() -> None:
    decision = settle(
        tally(retry_max=5),
        ended(Outcome.FAILED, Reason.AGENT_LOST),
        build_canceling=True,
        max_free_requeues=3,
    )
    assert decision.status is JobStatus.CANCELED


def test_an_unstarted_lost_attempt_is_requeued_for_free_a_bounded_number_of_times() -> None:
    lost = ended(Outcome.FAILED, Reason.AGENT_LOST, started=False)
    first = settle(tally(free=0), lost, build_canceling=False, max_free_requeues=2)
    assert (first.status, first.free) == (JobStatus.QUEUED, True)
    assert "never started" in first.message
    spent = settle(tally(free=2), lost, build_canceling=False, max_free_requeues=2)
    assert (spent.status, spent.free) == (JobStatus.FAILED, False)


def test_retries_follow_the_rule_and_count_from_the_base() -> None:
    lost = ended(Outcome.FAILED, Reason.AGENT_LOST)
    again = settle(tally(count=1, retry_max=1), lost, build_canceling=False, max_free_requeues=0)
    assert (again.status, again.free) == (JobStatus.QUEUED, False)
    assert "retrying" in again.message
    used_up = settle(tally(count=2, retry_max=1), lost, build_canceling=False, max_free_requeues=0)
    assert used_up.status is JobStatus.FAILED
    # A manual retry moved the base: the rule's retries are available again.
    fresh = settle(
        tally(count=2, base=1, retry_max=1), lost, build_canceling=False, max_free_requeues=0
    )
    assert fresh.status is JobStatus.QUEUED
    unnamed = ended(Outcome.FAILED, Reason.EXIT_CODE)
    assert (
        settle(tally(retry_max=3), unnamed, build_canceling=False, max_free_requeues=0).status
        is JobStatus.FAILED
    )


def test_closing_steps_skips_unstarted_and_ends_running_ones_as_the_attempt() -> None:
    steps = [StepStatus.SUCCEEDED, StepStatus.RUNNING, StepStatus.PENDING]
    assert close_steps(steps, Outcome.FAILED) == [
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
    ]
    assert close_steps(steps, Outcome.CANCELED)[1] is StepStatus.CANCELED


CHAIN = [
    RetryCandidate("build", JobStatus.SUCCEEDED, ()),
    RetryCandidate("test", JobStatus.FAILED, ("build",)),
    RetryCandidate("deploy", JobStatus.SKIPPED, ("test",)),
    RetryCandidate("docs", JobStatus.SUCCEEDED, ("build",)),
]


def test_retry_targets_take_the_unsuccessful_jobs_and_everything_after_them() -> None:
    assert retry_targets(CHAIN, None, 7) == {"test", "deploy"}
    assert retry_targets(CHAIN, "build", 7) == {"build", "test", "deploy", "docs"}


def test_retry_refusals_say_why() -> None:
    with pytest.raises(RetryRefused, match="has no job 'nope'") as unknown:
        retry_targets(CHAIN, "nope", 7)
    assert unknown.value.unknown_job
    succeeded = [RetryCandidate("a", JobStatus.SUCCEEDED, ())]
    with pytest.raises(RetryRefused, match="nothing to retry"):
        retry_targets(succeeded, None, 7)
    running = [
        RetryCandidate("a", JobStatus.FAILED, ()),
        RetryCandidate("b", JobStatus.RUNNING, ("a",)),
    ]
    with pytest.raises(RetryRefused, match="still running") as busy:
        retry_targets(running, "a", 7)
    assert not busy.value.unknown_job
