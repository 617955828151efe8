"""What a one-step job costs the store: the SQL statements each of its transactions runs.

The coordinator's CPU per job is mostly fixed cost per statement, so the hot paths keep a
budget; a change that adds a read to one of them (a SELECT after an UPDATE, a second look at a
row the transaction just wrote) fails here, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus, Outcome, StepStatus
from coordinator.domain.records import StepFinish
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store

T = TypeVar("T")

ONE_STEP = """\
name: one
image: conveyor/busybox
jobs:
  only:
    steps:
      - run: "true"
"""

# Statements per store call for a one-step job with nothing else in the farm.
BUDGET = {
    "create": 4,  # the build, its jobs, the queue's counter, queueing the job
    # locks, the queue page, the take, the attempt, its steps, the build running, and the
    # attempt's inputs (sent with the assignment: no GetInputs call of its own)
    "claim": 7,
    "start_step": 1,
    # the step, result, steps, job, job's move, build's jobs, build's end, webhook targets
    "finish": 8,
    "get": 3,  # the build, its jobs, its attempts with their steps
}


@contextmanager
def counting(store: Store) -> Iterator[Callable[[Callable[[], T]], tuple[T, int]]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    def count(call: Callable[[], T]) -> tuple[T, int]:
        seen.clear()
        result = call()
        return result, len(seen)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield count
    finally:
        event.remove(store.engine, "before_cursor_execute", before)


def test_a_one_step_job_stays_within_its_statement_budget(store: Store, agent: int) -> None:
    pipeline = load_pipeline(ONE_STEP, "one.yml")
    jobs = jobs_from_pipeline(pipeline, {})
    spent: dict[str, int] = {}
    with counting(store) as count:
        build_id, spent["create"] = count(
            lambda: store.builds.create(
                name="one", pipeline_yaml=ONE_STEP, source_name="one.yml", env={}, jobs=jobs
            )
        )
        claimed, spent["claim"] = count(lambda: store.attempts.claim(agent, {}, 1))
        assert len(claimed) == 1
        attempt = claimed[0].attempt_id
        canceling, spent["start_step"] = count(lambda: store.attempts.start_step(attempt, 0))
        assert canceling is False
        # The agent sends its only step's end inside the attempt's finish.
        step = StepFinish(0, StepStatus.SUCCEEDED, 0, log_length=3)
        end, spent["finish"] = count(
            lambda: store.attempts.finish(
                attempt, outcome=Outcome.SUCCEEDED, reason="", message="", exit_code=0, step=step
            )
        )
        assert not end.already_recorded
        build, spent["get"] = count(lambda: store.builds.get(build_id))
    # The work was done, not skipped: the build ended with its attempt and step as recorded.
    assert build.status is BuildStatus.SUCCEEDED
    only = build.job("only")
    assert only is not None
    [recorded] = only.attempts
    assert recorded.outcome is Outcome.SUCCEEDED
    assert [(s.status, s.exit_code, s.log_length) for s in recorded.steps] == [
        (StepStatus.SUCCEEDED, 0, 3)
    ]
    over = {name: (spent[name], most) for name, most in BUDGET.items() if spent[name] > most}
    assert not over, f"statements (spent, budget) over budget: {over}; all spent: {spent}"


def test_a_finish_sent_again_changes_no_step(store: Store, agent: int) -> None:
    jobs = jobs_from_pipeline(load_pipeline(ONE_STEP, "one.yml"), {})
    build_id = store.builds.create(
        name="one", pipeline_yaml=ONE_STEP, source_name="one.yml", env={}, jobs=jobs
    )
    (claimed,) = store.attempts.claim(agent, {}, 1)
    for length in (3, 99):  # the resend says otherwise: the first finish stands
        step = StepFinish(0, StepStatus.SUCCEEDED, 0, log_length=length)
        store.attempts.finish(
            claimed.attempt_id,
            outcome=Outcome.SUCCEEDED,
            reason="",
            message="",
            exit_code=0,
            step=step,
        )
    only = store.builds.get(build_id).job("only")
    assert only is not None
    assert [s.log_length for s in only.attempts[0].steps] == [3]
