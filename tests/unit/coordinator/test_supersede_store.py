"""Superseding in the store over a real database: a job a newer push canceled stays canceled
however its attempt ends, as a job of a canceled build does."""

from __future__ import annotations

from conveyor.states import BuildStatus, JobStatus, Outcome, Reason
from coordinator.domain.repo_plans import PUSH, Head, plan_build
from coordinator.domain.repo_ports import CommitInfo
from coordinator.domain.repo_records import NewBuild, RepoRecord
from coordinator.store import Store

MAIN = "refs/heads/main"
# Both jobs would run again after an agent_lost end: `fresh` never starts (a free requeue),
# `flaky` starts and may retry once on agent_lost.
INTERRUPTIBLE = """\
name: app
image: conveyor/busybox
jobs:
  fresh:
    interruptible: true
    steps: [{run: "sleep 60"}]
  flaky:
    interruptible: true
    retry: {max: 1, when: [agent_lost]}
    steps: [{run: "sleep 60"}]
"""


def repo_record() -> RepoRecord:
    return RepoRecord(
        name="app", url="/srv/app.git", pipeline_path=".conveyor.yml", poll_s=60.0,
        sealed_secret=None, heads={}, last_check_ms=None, last_error="", failures=0,
        next_check_ms=0, created_at_ms=0, created_by="admin",
    )  # fmt: skip


def push_of(commit: str) -> NewBuild:
    new, _ = plan_build(
        repo_record(), Head(MAIN, commit, PUSH), CommitInfo(None, "a push", "Ada"),
        INTERRUPTIBLE.encode(), accepts=lambda *_: True,
    )  # fmt: skip
    assert new is not None and not new.error, new
    return new


def record(store: Store, seen: dict[str, str], commit: str) -> tuple[int, int]:
    """Records a push of `commit` to main; (its build id, attempts it asked to stop)."""
    result = store.repos.record_check(
        "app", seen=seen, heads={MAIN: commit}, builds=[push_of(commit)], schedules={},
        schedules_commit="", next_check_ms=0, supersede=True,
    )  # fmt: skip
    return result.build_ids[0], len(result.superseded)


def test_a_superseded_job_whose_agent_is_lost_is_not_run_again(store: Store, agent: int) -> None:
    store.repos.add(repo_record())
    older, _ = record(store, {}, "a" * 40)
    running = {a.job_name: a for a in store.attempts.claim(agent, {}, 2)}
    assert set(running) == {"fresh", "flaky"}
    store.attempts.start_step(running["flaky"].attempt_id, 0)
    newer, stopped = record(store, {MAIN: "a" * 40}, "b" * 40)
    assert stopped == 2
    # The agent dies before the cancel reaches it: the reaper ends both attempts agent_lost.
    for assignment in running.values():
        store.attempts.finish(
            assignment.attempt_id, outcome=Outcome.FAILED, reason=Reason.AGENT_LOST,
            message="the agent stopped renewing its lease", exit_code=None,
        )  # fmt: skip
    build = store.builds.get(older)
    for name in ("fresh", "flaky"):
        job = build.job(name)
        assert job is not None
        assert (job.status, job.reason) == (JobStatus.CANCELED, Reason.SUPERSEDED), job
    assert build.status is BuildStatus.CANCELED
    assert {a.build_id for a in store.attempts.claim(agent, {}, 8)} == {newer}
