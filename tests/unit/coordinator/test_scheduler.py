"""Pure scheduling decisions: label matching, DAG advancement, outcome, retry, queue reason."""

from __future__ import annotations

import pytest

from conveyor.states import BuildStatus, JobStatus, Reason
from coordinator.policy.retry import should_retry
from coordinator.policy.scheduling import (
    AgentView,
    JobState,
    Transition,
    advance,
    build_outcome,
    labels_match,
    queued_reason,
)

W, Q, R = JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING
OK, FAIL, CANC, SKIP = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED


def job(name: str, status: JobStatus, *needs: str) -> JobState:
    return JobState(name, status, tuple(needs))


def outcome_of(transitions: list[Transition]) -> dict[str, JobStatus]:
    return {t.name: t.status for t in transitions}


# labels_match


def test_labels_match_when_required_is_a_subset_of_offered() -> None:
    assert labels_match({"os": "linux"}, {"os": "linux", "arch": "amd64"})
    assert labels_match({"os": "linux", "arch": "amd64"}, {"os": "linux", "arch": "amd64"})


def test_a_shell_agent_takes_only_jobs_that_ask_for_it() -> None:
    shell = {"executor": "shell", "os": "linux"}
    assert not labels_match({}, shell)
    assert not labels_match({"os": "linux"}, shell)
    assert labels_match({"executor": "shell"}, shell)
    assert labels_match({}, {"executor": "docker"})  # only executor=shell is exclusive


def test_an_unlabelled_job_beside_only_shell_agents_says_why_it_waits() -> None:
    reason, message = queued_reason({}, [agent({"executor": "shell"})])
    assert reason is Reason.WAITING_FOR_AGENT
    assert "agents labelled executor=shell take only jobs whose labels ask for it" in message


def test_labels_do_not_match_on_missing_key_or_different_value() -> None:
    assert not labels_match({"os": "linux", "gpu": "yes"}, {"os": "linux"})
    assert not labels_match({"os": "linux"}, {"os": "windows"})
    # A value must match exactly, not by prefix or case.
    assert not labels_match({"os": "linux"}, {"os": "Linux"})


def test_empty_labels() -> None:
    assert labels_match({}, {})
    assert labels_match({}, {"os": "linux"})
    assert not labels_match({"os": "linux"}, {})


# advance


def test_jobs_without_needs_are_queued() -> None:
    transitions = advance([job("a", W), job("b", W)])
    assert transitions == [Transition("a", Q), Transition("b", Q)]


def test_non_waiting_jobs_are_left_alone() -> None:
    assert advance([job("a", Q), job("b", R), job("c", OK), job("d", FAIL)]) == []


def test_job_queues_only_when_all_needs_succeeded() -> None:
    jobs = [job("a", OK), job("b", R), job("c", W, "a", "b")]
    assert advance(jobs) == []

    jobs = [job("a", OK), job("b", OK), job("c", W, "a", "b")]
    assert advance(jobs) == [Transition("c", Q)]


def test_job_stays_waiting_while_a_need_is_queued_or_waiting() -> None:
    jobs = [job("a", Q), job("b", W, "a"), job("c", W, "b")]
    assert advance(jobs) == []


@pytest.mark.parametrize("blocking", [FAIL, CANC, SKIP])
def test_a_need_that_cannot_succeed_skips_the_dependent(blocking: JobStatus) -> None:
    transitions = advance([job("a", blocking), job("b", W, "a")])
    assert len(transitions) == 1
    skipped = transitions[0]
    assert (skipped.name, skipped.status) == ("b", SKIP)
    assert skipped.reason == Reason.DEPENDENCY_FAILED
    assert "a" in skipped.message


def test_skip_cascades_transitively_in_one_call() -> None:
    # Listed in reverse order so a single forward pass would not be enough.
    jobs = [job("d", W, "c"), job("c", W, "b"), job("b", W, "a"), job("a", FAIL)]
    assert outcome_of(advance(jobs)) == {"b": SKIP, "c": SKIP, "d": SKIP}


def test_skip_does_not_wait_for_other_needs() -> None:
    # b failed; d also needs c, which is still running: d is skipped at once anyway.
    jobs = [job("b", FAIL), job("c", R), job("d", W, "b", "c")]
    assert outcome_of(advance(jobs)) == {"d": SKIP}


def test_diamond_waits_for_both_branches() -> None:
    #   a
    #  / \
    # b   c
    #  \ /
    #   d
    jobs = [job("a", OK), job("b", OK), job("c", R), job("d", W, "b", "c")]
    assert advance(jobs) == []
    jobs = [job("a", OK), job("b", OK), job("c", OK), job("d", W, "b", "c")]
    assert advance(jobs) == [Transition("d", Q)]


def test_diamond_fresh_build_queues_only_the_root() -> None:
    jobs = [job("a", W), job("b", W, "a"), job("c", W, "a"), job("d", W, "b", "c")]
    assert outcome_of(advance(jobs)) == {"a": Q}


def test_diamond_with_one_failed_branch_skips_the_join_once() -> None:
    jobs = [job("a", OK), job("b", FAIL), job("c", OK), job("d", W, "b", "c"), job("e", W, "d")]
    transitions = advance(jobs)
    assert outcome_of(transitions) == {"d": SKIP, "e": SKIP}
    assert len(transitions) == 2  # each job transitions exactly once


def test_diamond_root_failure_skips_everything_below() -> None:
    jobs = [job("a", FAIL), job("b", W, "a"), job("c", W, "a"), job("d", W, "b", "c")]
    assert outcome_of(advance(jobs)) == {"b": SKIP, "c": SKIP, "d": SKIP}


def test_advance_queues_and_skips_independent_branches_together() -> None:
    jobs = [job("a", OK), job("x", FAIL), job("b", W, "a"), job("y", W, "x")]
    assert outcome_of(advance(jobs)) == {"b": Q, "y": SKIP}


# build_outcome


@pytest.mark.parametrize("pending", [W, Q, R])
def test_build_outcome_is_none_while_any_job_is_not_final(pending: JobStatus) -> None:
    assert build_outcome([OK, pending, FAIL], cancel_requested=False) is None
    assert build_outcome([OK, pending], cancel_requested=True) is None


def test_build_succeeds_when_every_job_succeeded() -> None:
    assert build_outcome([OK, OK, OK], cancel_requested=False) is BuildStatus.SUCCEEDED


@pytest.mark.parametrize("statuses", [[OK, FAIL], [FAIL, SKIP], [OK, SKIP]])
def test_build_fails_when_a_job_failed_or_was_skipped(statuses: list[JobStatus]) -> None:
    assert build_outcome(statuses, cancel_requested=False) is BuildStatus.FAILED


def test_build_is_canceled_when_cancel_was_requested() -> None:
    assert build_outcome([OK, OK], cancel_requested=True) is BuildStatus.CANCELED
    assert build_outcome([OK, FAIL], cancel_requested=True) is BuildStatus.CANCELED


def test_build_is_canceled_when_any_job_was_canceled() -> None:
    assert build_outcome([OK, CANC, FAIL], cancel_requested=False) is BuildStatus.CANCELED


# should_retry


def test_retry_only_for_a_listed_reason() -> None:
    assert should_retry(
        reason="agent_lost", attempts_used=1, retry_max=2, retry_when=["agent_lost"]
    )
    assert not should_retry(
        reason="exit_code", attempts_used=1, retry_max=2, retry_when=["agent_lost"]
    )
    assert not should_retry(reason="agent_lost", attempts_used=1, retry_max=2, retry_when=[])


def test_retry_max_two_retries_the_first_and_second_failure_only() -> None:
    def retry(attempts_used: int) -> bool:
        return should_retry(
            reason="timeout", attempts_used=attempts_used, retry_max=2, retry_when=["timeout"]
        )

    assert retry(1)
    assert retry(2)
    assert not retry(3)


def test_retry_max_zero_never_retries() -> None:
    assert not should_retry(
        reason="agent_lost", attempts_used=1, retry_max=0, retry_when=["agent_lost"]
    )


# queued_reason


def agent(
    labels: dict[str, str],
    *,
    capacity: int = 1,
    running: int = 0,
    online: bool = True,
    name: str = "",
    held: str = "",
) -> AgentView:
    return AgentView(labels, capacity, running, online, name, held)


def test_no_agent_with_the_labels_waits_for_agent_naming_them() -> None:
    reason, message = queued_reason(
        {"os": "linux", "arch": "arm64"}, [agent({"os": "linux", "arch": "amd64"})]
    )
    assert reason is Reason.WAITING_FOR_AGENT
    assert "arch=arm64" in message
    assert "os=linux" in message


def test_no_agents_at_all_waits_for_agent() -> None:
    reason, message = queued_reason({"os": "linux"}, [])
    assert reason is Reason.WAITING_FOR_AGENT
    assert "os=linux" in message


def test_only_offline_matching_agents_waits_for_agent_saying_offline() -> None:
    agents = [agent({"os": "linux"}, online=False), agent({"os": "mac"}, online=True)]
    reason, message = queued_reason({"os": "linux"}, agents)
    assert reason is Reason.WAITING_FOR_AGENT
    assert "offline" in message
    assert "os=linux" in message


def test_all_matching_online_agents_busy_waits_for_capacity() -> None:
    agents = [
        agent({"os": "linux"}, capacity=2, running=2),
        agent({"os": "linux", "x": "y"}, capacity=1, running=1),
        agent({"os": "mac"}, capacity=4, running=0),  # free, but does not match
        agent({"os": "linux"}, capacity=1, running=0, online=False),  # free, but offline
    ]
    reason, message = queued_reason({"os": "linux"}, agents)
    assert reason is Reason.WAITING_FOR_CAPACITY
    assert "2" in message


def test_paused_or_draining_agents_are_named_not_called_busy() -> None:
    linux = {"os": "linux"}
    reason, message = queued_reason(linux, [agent(linux, capacity=0, name="a1", held="paused")])
    assert (reason, message) == (Reason.WAITING_FOR_CAPACITY, "agent a1 is paused")
    agents = [
        agent(linux, capacity=0, name="a1", held="paused"),
        agent(linux, capacity=0, name="a2", held="draining"),
        agent(linux, capacity=1, running=1, name="a3"),
    ]
    _, message = queued_reason(linux, agents)
    assert message == "agent a1 is paused, agent a2 is draining; the other matching agent is busy"
    many = [agent(linux, capacity=0, name=f"p{i}", held="paused") for i in range(5)]
    _, message = queued_reason(linux, [*many, *agents[2:], agent(linux, running=1, name="a4")])
    assert message == (
        "agent p0 is paused, agent p1 is paused, agent p2 is paused, "
        "2 more are paused or draining; the other 2 matching agents are busy"
    )


def test_a_free_matching_agent_is_not_reported_as_busy() -> None:
    agents = [agent({"os": "linux"}, capacity=2, running=2), agent({"os": "linux"}, running=0)]
    reason, _ = queued_reason({"os": "linux"}, agents)
    assert reason is Reason.WAITING_FOR_AGENT


PRIVILEGED = {"conveyor.privileged": "allowed"}


def test_a_privileged_job_names_the_flag_it_waits_for() -> None:
    plain = agent({"os": "linux"})
    reason, message = queued_reason({"os": "linux", **PRIVILEGED}, [plain])
    assert reason is Reason.WAITING_FOR_AGENT
    assert "privileged: true" in message and "--allow-privileged" in message
    assert "with labels os=linux" in message
    # No agent of its other labels either: it says so, and still names the flag.
    _, message = queued_reason({"os": "bsd", **PRIVILEGED}, [plain])
    assert "has labels os=bsd" in message and "--allow-privileged" in message


def test_a_privileged_job_matches_only_agents_that_allow_it() -> None:
    job_labels = {"os": "linux", **PRIVILEGED}
    assert not labels_match(job_labels, {"os": "linux"})
    assert labels_match(job_labels, {"os": "linux", **PRIVILEGED})
    # Agents that allow privileged containers still take ordinary jobs.
    assert labels_match({"os": "linux"}, {"os": "linux", **PRIVILEGED})
    reason, _ = queued_reason(job_labels, [agent({"os": "linux", **PRIVILEGED}, running=1)])
    assert reason is Reason.WAITING_FOR_CAPACITY
