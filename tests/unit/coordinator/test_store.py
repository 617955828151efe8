"""The SQLModel store over a real database (SQLite file, or PostgreSQL with CONVEYOR_TEST_DB):
builds from real pipelines, claims, results."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus, JobStatus, Outcome, Reason, StepStatus
from coordinator.config import CLAIM_PAGE_ROWS, MAX_UNSTARTED_REQUEUES
from coordinator.domain.artifact_records import NewArtifact
from coordinator.domain.errors import AlreadyExistsError, ConflictError, FencedError, NotFoundError
from coordinator.domain.records import Assignment, AttemptEnd, BuildRecord, JobRecord
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store

FORK = """\
name: fork
image: conveyor/busybox
jobs:
  a:
    steps:
      - name: hello
        run: echo a
  b:
    needs: [a]
    steps:
      - run: echo b
  c:
    needs: [a]
    steps:
      - run: echo c
"""

LABELLED = """\
name: labelled
image: conveyor/busybox
jobs:
  linux:
    labels: {os: linux}
    steps:
      - run: uname
  anywhere:
    steps:
      - run: "true"
"""

FLAKY = """\
name: flaky
image: conveyor/busybox
jobs:
  deploy:
    retry: {max: 1, when: [agent_lost]}
    steps:
      - run: ./deploy
  after:
    needs: [deploy]
    steps:
      - run: "true"
"""

SINGLE = """\
name: single
image: conveyor/busybox
jobs:
  only:
    steps:
      - run: "true"
"""


@pytest.fixture
def agent_id(store: Store) -> int:
    return store.agents.register(
        name="agent-1", labels={"os": "linux"}, capacity=4, session_hash=""
    ).id


def submit(store: Store, text: str) -> int:
    pipeline = load_pipeline(text, "pipeline.yml")
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=text,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
    )


def job_of(build: BuildRecord, name: str) -> JobRecord:
    job = build.job(name)
    assert job is not None, f"no job {name}"
    return job


def statuses(store: Store, build_id: int) -> dict[str, JobStatus]:
    return {job.name: job.status for job in store.builds.get(build_id).jobs}


def claim_one(store: Store, agent_id: int, labels: dict[str, str] | None = None) -> Assignment:
    assignments = store.attempts.claim(agent_id, labels or {}, 1)
    assert len(assignments) == 1
    return assignments[0]


def succeed(store: Store, assignment: Assignment) -> AttemptEnd:
    return store.attempts.finish(
        assignment.attempt_id,
        outcome=Outcome.SUCCEEDED,
        reason="",
        message="",
        exit_code=0,
    )


def fail(store: Store, assignment: Assignment, reason: str, exit_code: int | None) -> AttemptEnd:
    store.attempts.start_step(assignment.attempt_id, 0)  # the attempt ran something before it ended
    return store.attempts.finish(
        assignment.attempt_id,
        outcome=Outcome.FAILED,
        reason=reason,
        message=f"failed: {reason}",
        exit_code=exit_code,
    )


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        Store("sqlite:///:memory:")


def test_create_build_queues_the_root_and_waits_the_rest(store: Store) -> None:
    build_id = submit(store, FORK)
    build = store.builds.get(build_id)
    assert build.name == "fork"
    assert build.status is BuildStatus.QUEUED
    assert not build.cancel_requested
    assert build.finished_at_ms is None
    assert [job.name for job in build.jobs] == ["a", "b", "c"]

    a, b, c = (job_of(build, name) for name in "abc")
    assert a.status is JobStatus.QUEUED
    assert a.step_names == ("hello",)
    assert a.attempts == ()
    for dependent in (b, c):
        assert dependent.status is JobStatus.WAITING
        assert dependent.reason == Reason.WAITING_FOR_NEEDS
        assert dependent.needs == ("a",)
        assert "a" in dependent.message


def test_get_build_of_an_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.builds.get(404)


def test_claim_respects_labels(store: Store) -> None:
    build_id = submit(store, LABELLED)
    mac = store.agents.register(name="mac", labels={"os": "mac"}, capacity=2, session_hash="")

    # "linux" is older (first in file) but needs os=linux: the mac agent only gets "anywhere".
    got = store.attempts.claim(mac.id, {"os": "mac"}, 2)
    assert [a.job_name for a in got] == ["anywhere"]
    assert store.attempts.claim(mac.id, {"os": "mac"}, 2) == []
    assert statuses(store, build_id)["linux"] is JobStatus.QUEUED

    linux = store.agents.register(name="linux", labels={"os": "linux"}, capacity=1, session_hash="")
    assert [a.job_name for a in store.attempts.claim(linux.id, {"os": "linux", "x": "y"}, 1)] == [
        "linux"
    ]


def test_claim_hands_out_the_oldest_queued_job_first(store: Store, agent_id: int) -> None:
    first = submit(store, SINGLE)
    second = submit(store, SINGLE)
    third = submit(store, SINGLE)
    assert claim_one(store, agent_id).build_id == first
    assert [a.build_id for a in store.attempts.claim(agent_id, {}, 5)] == [second, third]


def test_claim_never_hands_the_same_job_twice(store: Store, agent_id: int) -> None:
    build_id = submit(store, LABELLED)
    one = claim_one(store, agent_id, {"os": "linux"})
    two = claim_one(store, agent_id, {"os": "linux"})
    assert {one.job_name, two.job_name} == {"linux", "anywhere"}
    assert one.attempt_id != two.attempt_id
    assert one.lease_token != two.lease_token
    assert store.attempts.claim(agent_id, {"os": "linux"}, 1) == []
    assert set(statuses(store, build_id).values()) == {JobStatus.RUNNING}


def test_claim_creates_attempt_one_with_the_resolved_spec(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    assignment = claim_one(store, agent_id)
    assert (assignment.build_id, assignment.job_name, assignment.attempt_number) == (
        build_id,
        "a",
        1,
    )
    [step] = assignment.spec.steps
    assert (step.name, step.image, step.run) == ("hello", "conveyor/busybox", "echo a")

    build = store.builds.get(build_id)
    assert build.status is BuildStatus.RUNNING
    [attempt] = job_of(build, "a").attempts
    assert attempt.id == assignment.attempt_id
    assert attempt.agent_name == "agent-1"
    assert attempt.outcome is None
    assert [s.status for s in attempt.steps] == [StepStatus.PENDING]


LINUX_ONLY = """\
name: linux-only
image: conveyor/busybox
jobs:
  linux:
    labels: {os: linux}
    steps:
      - run: uname
"""


def test_claim_finds_a_match_behind_pages_of_jobs_it_cannot_take(
    store: Store, agent_id: int
) -> None:
    blocked = [submit(store, LINUX_ONLY) for _ in range(3 * CLAIM_PAGE_ROWS + 1)]
    reachable = submit(store, SINGLE)
    assert [a.build_id for a in store.attempts.claim(agent_id, {"os": "mac"}, 3)] == [reachable]
    assert all(statuses(store, b)["linux"] is JobStatus.QUEUED for b in blocked)


def test_claim_keeps_queue_order_across_pages(store: Store, agent_id: int) -> None:
    builds = [submit(store, SINGLE) for _ in range(2 * CLAIM_PAGE_ROWS + 3)]
    got = store.attempts.claim(agent_id, {}, 3)
    got += store.attempts.claim(agent_id, {}, len(builds))
    assert [a.build_id for a in got] == builds


def test_claim_with_no_slots_claims_nothing(store: Store, agent_id: int) -> None:
    build_id = submit(store, SINGLE)
    assert store.attempts.claim(agent_id, {}, 0) == []
    assert statuses(store, build_id)["only"] is JobStatus.QUEUED


def test_success_queues_dependents_and_the_build_succeeds(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    a = claim_one(store, agent_id)
    end = succeed(store, a)
    assert end.jobs_queued and not end.already_recorded
    assert end.queued_labels == ({}, {})  # b and c, for the dispatcher to wake agents for
    assert end.outcome is Outcome.SUCCEEDED
    assert statuses(store, build_id) == {
        "a": JobStatus.SUCCEEDED,
        "b": JobStatus.QUEUED,
        "c": JobStatus.QUEUED,
    }

    b, c = store.attempts.claim(agent_id, {}, 2)
    assert [b.job_name, c.job_name] == ["b", "c"]
    succeed(store, b)
    assert store.builds.get(build_id).status is BuildStatus.RUNNING
    end = succeed(store, c)
    assert not end.jobs_queued

    build = store.builds.get(build_id)
    assert build.status is BuildStatus.SUCCEEDED
    assert build.finished_at_ms is not None
    assert all(job.status is JobStatus.SUCCEEDED for job in build.jobs)


def test_failure_skips_dependents_and_fails_the_build(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    a = claim_one(store, agent_id)
    store.attempts.start_step(a.attempt_id, 0)
    end = fail(store, a, Reason.EXIT_CODE, 3)
    assert end.outcome is Outcome.FAILED and not end.jobs_queued

    build = store.builds.get(build_id)
    assert build.status is BuildStatus.FAILED
    assert build.finished_at_ms is not None
    job_a = job_of(build, "a")
    assert job_a.status is JobStatus.FAILED
    assert job_a.reason == Reason.EXIT_CODE
    assert job_a.exit_code == 3
    [attempt] = job_a.attempts
    assert (attempt.outcome, attempt.reason, attempt.exit_code) == (Outcome.FAILED, "exit_code", 3)
    # The step left running is closed as failed.
    assert [s.status for s in attempt.steps] == [StepStatus.FAILED]
    for name in "bc":
        assert job_of(build, name).status is JobStatus.SKIPPED
        assert job_of(build, name).reason == Reason.DEPENDENCY_FAILED
    assert store.attempts.claim(agent_id, {}, 5) == []


def test_finishing_twice_returns_the_stored_result(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    a = claim_one(store, agent_id)
    fail(store, a, Reason.EXIT_CODE, 2)
    before = store.builds.get(build_id)

    again = succeed(store, a)
    assert again.already_recorded
    assert again.outcome is Outcome.FAILED
    assert again.reason == Reason.EXIT_CODE
    assert not again.jobs_queued
    assert store.builds.get(build_id) == before


def test_finish_of_an_unknown_attempt_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.attempts.finish(999, outcome=Outcome.SUCCEEDED, reason="", message="", exit_code=0)


def test_agent_lost_is_retried_as_a_new_attempt_keeping_history(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, FLAKY)
    first = claim_one(store, agent_id)
    end = fail(store, first, Reason.AGENT_LOST, None)
    assert end.jobs_queued
    assert end.queued_labels == ({},)  # the job itself, queued again

    build = store.builds.get(build_id)
    assert build.status is BuildStatus.RUNNING
    deploy = job_of(build, "deploy")
    assert deploy.status is JobStatus.QUEUED
    assert deploy.reason == Reason.AGENT_LOST
    assert job_of(build, "after").status is JobStatus.WAITING

    second = claim_one(store, agent_id)
    assert (second.job_name, second.attempt_number) == ("deploy", 2)
    assert second.attempt_id != first.attempt_id
    assert second.lease_token != first.lease_token

    succeed(store, second)
    attempts = job_of(store.builds.get(build_id), "deploy").attempts
    assert [(a.number, a.outcome, a.reason) for a in attempts] == [
        (1, Outcome.FAILED, "agent_lost"),
        (2, Outcome.SUCCEEDED, ""),
    ]
    assert statuses(store, build_id)["after"] is JobStatus.QUEUED


def test_retry_budget_is_exhausted_after_max_retries(store: Store, agent_id: int) -> None:
    build_id = submit(store, FLAKY)
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)

    build = store.builds.get(build_id)
    assert job_of(build, "deploy").status is JobStatus.FAILED
    assert len(job_of(build, "deploy").attempts) == 2
    assert job_of(build, "after").status is JobStatus.SKIPPED
    assert build.status is BuildStatus.FAILED


def test_a_reason_not_in_the_retry_rule_is_not_retried(store: Store, agent_id: int) -> None:
    build_id = submit(store, FLAKY)
    fail(store, claim_one(store, agent_id), Reason.EXIT_CODE, 1)
    build = store.builds.get(build_id)
    assert job_of(build, "deploy").status is JobStatus.FAILED
    assert build.status is BuildStatus.FAILED


def test_cancel_build_cancels_waiting_and_queued_jobs_and_returns_running_attempts(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, LABELLED)
    running = claim_one(store, agent_id, {"os": "mac"})  # takes "anywhere"; "linux" stays queued
    assert running.job_name == "anywhere"

    result = store.builds.cancel(build_id)
    assert result.build.cancel_requested
    assert job_of(result.build, "linux").status is JobStatus.CANCELED
    assert job_of(result.build, "anywhere").status is JobStatus.RUNNING
    assert not result.build.status.final
    [live] = result.running
    assert (live.attempt_id, live.agent_id, live.lease_token) == (
        running.attempt_id,
        agent_id,
        running.lease_token,
    )
    assert live.cancel_requested
    # The agent learns of it on its next step, and nothing is left to claim.
    assert store.attempts.start_step(running.attempt_id, 0)
    assert store.attempts.claim(agent_id, {"os": "linux"}, 5) == []

    store.attempts.finish(
        running.attempt_id,
        outcome=Outcome.CANCELED,
        reason=Reason.CANCELED,
        message="canceled",
        exit_code=None,
    )
    build = store.builds.get(build_id)
    assert build.status is BuildStatus.CANCELED
    assert job_of(build, "anywhere").status is JobStatus.CANCELED
    assert build.finished_at_ms is not None


def test_cancel_build_with_dependents_waiting(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    a = claim_one(store, agent_id)
    result = store.builds.cancel(build_id)
    assert [r.attempt_id for r in result.running] == [a.attempt_id]
    assert job_of(result.build, "b").status is JobStatus.CANCELED
    assert job_of(result.build, "c").status is JobStatus.CANCELED
    # Even if the running attempt manages to succeed, the build ends canceled.
    succeed(store, a)
    assert store.builds.get(build_id).status is BuildStatus.CANCELED


def test_a_lost_attempt_of_a_canceled_build_is_not_retried(store: Store, agent_id: int) -> None:
    build_id = submit(store, FLAKY)
    first = claim_one(store, agent_id)
    store.builds.cancel(build_id)
    end = fail(store, first, Reason.AGENT_LOST, None)
    assert not end.jobs_queued
    assert store.attempts.claim(agent_id, {}, 5) == []
    build = store.builds.get(build_id)
    assert job_of(build, "deploy").status is JobStatus.CANCELED
    assert len(job_of(build, "deploy").attempts) == 1
    assert build.status is BuildStatus.CANCELED


def test_cancel_of_a_build_that_never_started_is_final_at_once(store: Store) -> None:
    build_id = submit(store, FORK)
    result = store.builds.cancel(build_id)
    assert result.running == ()
    assert result.build.status is BuildStatus.CANCELED
    assert {job.status for job in result.build.jobs} == {JobStatus.CANCELED}


def test_cancel_of_a_finished_build_changes_nothing(store: Store, agent_id: int) -> None:
    build_id = submit(store, SINGLE)
    succeed(store, claim_one(store, agent_id))
    result = store.builds.cancel(build_id)
    assert result.running == ()
    assert result.build.status is BuildStatus.SUCCEEDED
    assert not result.build.cancel_requested


def test_retry_build_requeues_the_failed_job_and_its_skipped_dependents(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, FORK)
    first = claim_one(store, agent_id)
    fail(store, first, Reason.EXIT_CODE, 1)
    assert store.builds.get(build_id).status is BuildStatus.FAILED

    build = store.builds.retry(build_id, None)
    assert build.status is BuildStatus.RUNNING
    assert build.finished_at_ms is None
    a = job_of(build, "a")
    assert a.status is JobStatus.QUEUED
    assert a.exit_code is None
    assert {job_of(build, n).status for n in "bc"} == {JobStatus.WAITING}

    second = claim_one(store, agent_id)
    assert (second.job_name, second.attempt_number) == ("a", 2)
    succeed(store, second)
    b, c = store.attempts.claim(agent_id, {}, 2)
    succeed(store, b)
    succeed(store, c)

    build = store.builds.get(build_id)
    assert build.status is BuildStatus.SUCCEEDED
    assert [(x.number, x.outcome) for x in job_of(build, "a").attempts] == [
        (1, Outcome.FAILED),
        (2, Outcome.SUCCEEDED),
    ]


def test_retry_build_leaves_succeeded_jobs_alone(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    succeed(store, claim_one(store, agent_id))
    b, c = store.attempts.claim(agent_id, {}, 2)
    succeed(store, b)
    fail(store, c, Reason.EXIT_CODE, 1)
    assert store.builds.get(build_id).status is BuildStatus.FAILED

    build = store.builds.retry(build_id, None)
    assert {job.name: job.status for job in build.jobs} == {
        "a": JobStatus.SUCCEEDED,
        "b": JobStatus.SUCCEEDED,
        "c": JobStatus.QUEUED,
    }
    again = claim_one(store, agent_id)
    assert (again.job_name, again.attempt_number) == ("c", 2)


def test_retry_build_refusals(store: Store, agent_id: int) -> None:
    build_id = submit(store, FORK)
    claim_one(store, agent_id)
    with pytest.raises(ConflictError):
        store.builds.retry(build_id, None)  # still running
    with pytest.raises(ConflictError):
        store.builds.retry(build_id, "a")  # running job
    with pytest.raises(NotFoundError):
        store.builds.retry(build_id, "nope")
    with pytest.raises(NotFoundError):
        store.builds.retry(build_id + 1, None)

    done = submit(store, SINGLE)
    succeed(store, claim_one(store, agent_id))
    with pytest.raises(ConflictError):
        store.builds.retry(done, None)  # nothing failed


def test_retrying_a_job_never_gives_a_running_dependent_a_second_live_attempt(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, FORK)
    succeed(store, claim_one(store, agent_id))
    b, _ = store.attempts.claim(agent_id, {}, 2)  # b and c are running
    assert b.job_name == "b"

    # Refusing the retry or leaving b alone are both fine; a second live b is not.
    with contextlib.suppress(ConflictError):
        store.builds.retry(build_id, "a")
    for assignment in store.attempts.claim(agent_id, {}, 5):
        if assignment.job_name == "a":
            succeed(store, assignment)
    store.attempts.claim(agent_id, {}, 5)

    live_b = [x for x in job_of(store.builds.get(build_id), "b").attempts if x.outcome is None]
    assert len(live_b) <= 1


def test_a_build_survives_reopening_the_store(database_url: str) -> None:
    first = Store(database_url)
    agent = first.agents.register(name="agent-1", labels={}, capacity=2, session_hash="h")
    build_id = submit(first, FORK)
    a = claim_one(first, agent.id)
    before = first.builds.get(build_id)
    first.close()

    reopened = Store(database_url)
    try:
        assert reopened.builds.get(build_id) == before
        assert [x.attempt_id for x in reopened.attempts.live()] == [a.attempt_id]
        # ... with its step count, so the leases reloaded from it bound step indexes.
        assert [x.step_count for x in reopened.attempts.live()] == [len(a.spec.steps)]
        assert reopened.attempts.result(a.attempt_id) == (None, "", a.lease_token)
        assert [x.name for x in reopened.agents.list()] == ["agent-1"]
        # Work continues where it stopped.
        succeed(reopened, a)
        assert [x.job_name for x in reopened.attempts.claim(agent.id, {}, 2)] == ["b", "c"]
    finally:
        reopened.close()


def test_an_accepted_build_survives_a_process_that_dies_without_closing(
    database_url: str,
) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from conveyor.pipeline import load_pipeline
        from coordinator.store import Store
        from coordinator.domain.submit import jobs_from_pipeline
        text = {FORK!r}
        pipeline = load_pipeline(text)
        store = Store({database_url!r})
        build_id = store.builds.create(
            name=pipeline.name, pipeline_yaml=text, source_name="pipeline.yml", env={{}},
            jobs=jobs_from_pipeline(pipeline, {{}}),
        )
        print(build_id, flush=True)
        os._exit(0)  # no close, no cleanup: like kill -9 right after the answer
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    build_id = int(done.stdout.strip())

    store = Store(database_url)
    try:
        build = store.builds.get(build_id)
        assert build.name == "fork"
        assert statuses(store, build_id) == {
            "a": JobStatus.QUEUED,
            "b": JobStatus.WAITING,
            "c": JobStatus.WAITING,
        }
    finally:
        store.close()


def test_attempt_lost_before_any_step_is_requeued_without_using_a_retry(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, FLAKY)
    never_started = claim_one(store, agent_id)
    store.attempts.finish(
        never_started.attempt_id,
        outcome=Outcome.FAILED,
        reason=Reason.AGENT_LOST,
        message="gone",
        exit_code=None,
    )
    assert job_of(store.builds.get(build_id), "deploy").status is JobStatus.QUEUED
    # The retry rule (max 1) is still whole: one started-and-lost attempt is retried...
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    assert job_of(store.builds.get(build_id), "deploy").status is JobStatus.QUEUED
    # ...and the next one uses it up.
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    deploy = job_of(store.builds.get(build_id), "deploy")
    assert (deploy.status, len(deploy.attempts)) == (JobStatus.FAILED, 3)


def test_manual_retry_restores_the_automatic_retries(store: Store, agent_id: int) -> None:
    build_id = submit(store, FLAKY)
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    assert job_of(store.builds.get(build_id), "deploy").status is JobStatus.FAILED
    store.builds.retry(build_id, "deploy")
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    deploy = job_of(store.builds.get(build_id), "deploy")
    assert (deploy.status, len(deploy.attempts)) == (JobStatus.QUEUED, 3)


def test_touch_agents_records_when_each_agent_was_seen(store: Store) -> None:
    a = store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    b = store.agents.register(name="b", labels={}, capacity=1, session_hash="")
    store.agents.touch({a.id: 1_000, b.id: 2_000})
    seen = {agent.name: agent.last_seen_ms for agent in store.agents.list()}
    assert seen == {"a": 1_000, "b": 2_000}


def test_free_requeues_of_never_started_attempts_are_capped(store: Store, agent_id: int) -> None:
    build_id = submit(store, FLAKY)
    for _ in range(MAX_UNSTARTED_REQUEUES + 1):
        undelivered = claim_one(store, agent_id)
        store.attempts.finish(
            undelivered.attempt_id,
            outcome=Outcome.FAILED,
            reason=Reason.AGENT_LOST,
            message="gone",
            exit_code=None,
        )
    deploy = job_of(store.builds.get(build_id), "deploy")
    # The retry rule (max 1, agent_lost) still applies once the free requeues are used up.
    assert deploy.status is JobStatus.QUEUED
    fail(store, claim_one(store, agent_id), Reason.AGENT_LOST, None)
    deploy = job_of(store.builds.get(build_id), "deploy")
    assert (deploy.status, len(deploy.attempts)) == (JobStatus.FAILED, MAX_UNSTARTED_REQUEUES + 2)


def test_steps_of_an_ended_attempt_cannot_be_written(store: Store, agent_id: int) -> None:
    submit(store, FLAKY)
    attempt = claim_one(store, agent_id)
    store.attempts.finish(
        attempt.attempt_id,
        outcome=Outcome.FAILED,
        reason=Reason.AGENT_LOST,
        message="gone",
        exit_code=None,
    )
    with pytest.raises(FencedError):
        store.attempts.start_step(attempt.attempt_id, 0)
    with pytest.raises(FencedError):
        store.attempts.finish_step(attempt.attempt_id, 0, StepStatus.SUCCEEDED, 0, 10)


def test_a_job_too_large_for_one_message_is_refused_at_submission() -> None:
    big_env = "x" * 300_000
    steps = "".join(f"      - run: echo {i}\n" for i in range(20))
    text = f"name: big\nimage: i\nenv: {{BIG: {big_env}}}\njobs:\n  fat:\n    steps:\n{steps}"
    with pytest.raises(ValueError, match=r"jobs\.fat: too large once the env is merged"):
        jobs_from_pipeline(load_pipeline(text, "big.yml"), {})


def test_an_artifact_name_is_kept_once_per_attempt_unless_resent_identically(
    store: Store, agent_id: int
) -> None:
    build_id = submit(store, SINGLE)
    claimed = claim_one(store, agent_id)
    first = NewArtifact(build_id, claimed.attempt_id, "out.txt", "a" * 64, 6, 0o644)
    store.artifacts.add_artifact(first, 10**9, 100)
    store.artifacts.add_artifact(first, 10**9, 100)  # resent: no change, no error
    other = NewArtifact(build_id, claimed.attempt_id, "out.txt", "b" * 64, 7, 0o644)
    with pytest.raises(AlreadyExistsError, match=r"artifact 'out\.txt' was already uploaded"):
        store.artifacts.add_artifact(other, 10**9, 100)
    listed, _ = store.artifacts.artifacts(build_id)
    assert [(a.name, a.sha256) for a in listed] == [("out.txt", "a" * 64)]
    assert store.artifacts.artifact_digest(claimed.attempt_id, "out.txt") == "a" * 64
    assert store.artifacts.artifact_digest(claimed.attempt_id, "other.txt") is None


def test_a_build_gc_emptied_is_not_retried(store: Store, agent_id: int) -> None:
    old, bare = submit(store, SINGLE), submit(store, SINGLE)
    claimed = claim_one(store, agent_id)
    kept = NewArtifact(old, claimed.attempt_id, "out.txt", "a" * 64, 6, 0o644)
    store.artifacts.add_artifact(kept, 10**9, 100)
    succeed(store, claimed)
    succeed(store, claim_one(store, agent_id))
    newest = submit(store, SINGLE)
    store.artifacts.collect(int(time.time() * 1000) + 1000)
    with pytest.raises(ConflictError, match="gc removed its source and artifacts"):
        store.builds.retry(old, "only")
    # A build that lost nothing to gc is retried as before.
    assert store.builds.retry(bare, "only").status is BuildStatus.RUNNING
    assert store.builds.get(old).status is BuildStatus.SUCCEEDED
    assert store.builds.get(newest).status is BuildStatus.QUEUED


def test_list_gives_the_newest_builds_as_summaries_with_job_counts(
    store: Store, agent_id: int
) -> None:
    single, fork, newest = submit(store, SINGLE), submit(store, FORK), submit(store, SINGLE)
    succeed(store, claim_one(store, agent_id))
    listed = store.builds.list(2)
    assert [(b.id, b.name, b.job_count) for b in listed] == [
        (newest, "single", 1),
        (fork, "fork", 3),
    ]
    everything = store.builds.list(10)
    assert [(b.id, b.status, b.job_count) for b in everything][-1] == (
        single,
        BuildStatus.SUCCEEDED,
        1,
    )
