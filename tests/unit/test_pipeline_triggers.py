"""`on:` (pushes and schedules that start builds), `interruptible:`, and what they decide."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent

import pytest

from conveyor.pipeline import (
    ANY_PUSH,
    PipelineError,
    PushTrigger,
    ScheduleTrigger,
    Triggers,
    load_pipeline,
)
from conveyor.pipeline.triggers import cron_problem, next_fire_ms, push_accepted
from coordinator.domain.submit import jobs_from_pipeline

Problem = tuple[str, str, int | None, int | None]
JOBS = "jobs:\n  a:\n    steps: [{run: x}]\n"
FIVE_FIELDS = 'expected five fields: minute hour day-of-month month day-of-week, e.g. "0 3 * * *"'


def doc(on: str) -> str:
    """A pipeline whose `on:` text starts on line 3."""
    return "name: p\nimage: img\n" + dedent(on) + JOBS


def problems(text: str) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    return [(i.path, i.message, i.line, i.column) for i in info.value.issues]


def ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1000


# -- reading `on:` -----------------------------------------------------------------------------


def test_push_and_schedule_are_read() -> None:
    pipeline = load_pipeline(
        doc("""\
        on:
          push:
            branches: [main, "release/*"]
            tags: ["v*"]
          schedule:
            - cron: "0  3 * * *"
              branch: main
            - cron: "*/15 * * * 1-5"
        """)
    )
    assert pipeline.on == Triggers(
        push=PushTrigger(branches=("main", "release/*"), tags=("v*",)),
        schedules=(ScheduleTrigger("0 3 * * *", "main"), ScheduleTrigger("*/15 * * * 1-5")),
    )


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("", Triggers(push=ANY_PUSH)),
        ("on: {}\n", Triggers(push=None)),
        ("on:\n  push:\n", Triggers(push=ANY_PUSH)),
        ("on: {push: {}}\n", Triggers(push=ANY_PUSH)),
        ("on: {push: {branches: [main]}}\n", Triggers(push=PushTrigger(branches=("main",)))),
        ("on: {push: {tags: ['v*']}}\n", Triggers(push=PushTrigger(tags=("v*",)))),
        (
            "on: {schedule: [{cron: '0 3 * * *'}]}\n",
            Triggers(push=None, schedules=(ScheduleTrigger("0 3 * * *"),)),
        ),
    ],
    ids=["absent", "empty", "push-null", "push-empty", "branches-only", "tags-only", "schedule"],
)
def test_what_on_builds_when_parts_are_left_out(on: str, expected: Triggers) -> None:
    assert load_pipeline(doc(on)).on == expected


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (
            "on: {pull: {}}\n",
            [("on.pull", "unknown key 'pull' in 'on' (allowed: push, schedule)", 3, 6)],
        ),
        ("on:\n", [("on", "expected a mapping, got null", 3, 4)]),
        ("on: [push]\n", [("on", "expected a mapping, got a list", 3, 5)]),
        (
            "on:\n  push: {branch: [main]}\n",
            [
                (
                    "on.push.branch",
                    "unknown key 'branch' in 'on.push' (did you mean 'branches'?)",
                    4,
                    10,
                )
            ],
        ),
        (
            "on:\n  push: {branches: main}\n",
            [("on.push.branches", "expected a list, got a string", 4, 20)],
        ),
        (
            "on:\n  push: {tags: ['']}\n",
            [("on.push.tags[0]", "empty pattern", 4, 17)],
        ),
        (
            "on:\n  schedule: {cron: '0 3 * * *'}\n",
            [("on.schedule", "expected a list, got a mapping", 4, 13)],
        ),
        (
            "on:\n  schedule:\n    - branch: main\n",
            [("on.schedule[0]", "missing required key 'cron'", 5, 7)],
        ),
        (
            "on:\n  schedule:\n    - cron: '0 3 * * * *'\n",
            [("on.schedule[0].cron", f"{FIVE_FIELDS}; got 6 fields", 5, 13)],
        ),
        (
            "on:\n  schedule:\n    - cron: '@daily'\n",
            [("on.schedule[0].cron", f"{FIVE_FIELDS}; got 1 field", 5, 13)],
        ),
        (
            "on:\n  schedule:\n    - {cron: '0 3 * * *'}\n    - cron: '61 * * * *'\n",
            [
                (
                    "on.schedule[1].cron",
                    "invalid cron expression '61 * * * *': bad minute",
                    6,
                    13,
                )
            ],
        ),
        (
            "on:\n  schedule:\n    - cron: 0\n",
            [("on.schedule[0].cron", "expected a string, got an integer", 5, 13)],
        ),
        (
            "on:\n  schedule:\n    - {cron: '0 3 * * *', branch: 'release/*'}\n",
            [
                (
                    "on.schedule[0].branch",
                    "invalid branch 'release/*' (a branch name, at most 255 characters, "
                    "no spaces or '*?[')",
                    5,
                    35,
                )
            ],
        ),
        (
            "on:\n  schedule:\n    - {cron: '0 3 * * *'}\n    - {cron: '0  3 * * *'}\n",
            [("on.schedule[1]", "duplicate schedule (same cron and branch)", 6, 7)],
        ),
        (
            "on:\n  schedule:\n    - {cron: '0 3 * * *', when: daily}\n",
            [
                (
                    "on.schedule[0].when",
                    "unknown key 'when' in 'on.schedule[0]' (allowed: cron, branch)",
                    5,
                    27,
                )
            ],
        ),
    ],
    ids=[
        "unknown-event",
        "null",
        "list",
        "push-unknown-key",
        "branches-not-list",
        "empty-glob",
        "schedule-not-list",
        "cron-missing",
        "cron-six-fields",
        "cron-alias",
        "cron-bad-minute",
        "cron-not-string",
        "branch-glob",
        "duplicate-schedule",
        "schedule-unknown-key",
    ],
)
def test_a_bad_on_is_refused_where_it_is_wrong(on: str, expected: list[Problem]) -> None:
    assert problems(doc(on)) == expected


def test_a_schedule_with_a_bad_branch_is_not_also_called_a_duplicate() -> None:
    """Only the wrong line is named: the entry with the bad branch is not read as the
    default-branch entry that a correct line below then repeats."""
    on = """\
        on:
          schedule:
            - {cron: "0 3 * * *", branch: "rel*"}
            - cron: "0 3 * * *"
        """
    assert [(path, line) for path, _, line, _ in problems(doc(on))] == [
        ("on.schedule[0].branch", 5)
    ]


def test_too_many_schedules_are_refused() -> None:
    entries = "".join(f"    - cron: '{minute} * * * *'\n" for minute in range(21))
    assert problems(doc("on:\n  schedule:\n" + entries)) == [
        ("on.schedule", "too many schedules (21 > 20)", 5, 5)
    ]


# -- interruptible -----------------------------------------------------------------------------


def test_interruptible_is_read_and_stored_in_the_job_spec() -> None:
    pipeline = load_pipeline(
        "name: p\nimage: img\njobs:\n"
        "  test:\n    interruptible: true\n    steps: [{run: x}]\n"
        "  deploy:\n    steps: [{run: y}]\n"
    )
    assert (pipeline.job("test").interruptible, pipeline.job("deploy").interruptible) == (
        True,
        False,
    )
    test, deploy = jobs_from_pipeline(pipeline, {})
    assert (test.spec.interruptible, deploy.spec.interruptible) == (True, False)


def test_interruptible_must_be_a_boolean() -> None:
    text = "name: p\nimage: img\njobs:\n  a:\n    interruptible: 'yes'\n    steps: [{run: x}]\n"
    assert problems(text) == [
        ("jobs.a.interruptible", "expected true or false, got a string", 5, 20)
    ]


# -- push_accepted -----------------------------------------------------------------------------

RELEASES = Triggers(push=PushTrigger(branches=("main", "release/*"), tags=("v*",)))
BRANCHES_ONLY = Triggers(push=PushTrigger(branches=("main",)))


@pytest.mark.parametrize(
    ("triggers", "branch", "tag", "accepted"),
    [
        (Triggers(), "any/thing", None, True),
        (Triggers(), None, "anything", True),
        (RELEASES, "main", None, True),
        (RELEASES, "release/1.2", None, True),
        (RELEASES, "release/1.2/hotfix", None, True),
        (RELEASES, "mainline", None, False),
        (RELEASES, "Main", None, False),
        (RELEASES, None, "v1.0", True),
        (RELEASES, None, "1.0", False),
        (RELEASES, None, "main", False),
        (BRANCHES_ONLY, "main", None, True),
        (BRANCHES_ONLY, None, "v1.0", False),
        (Triggers(push=None), "main", None, False),
        (Triggers(push=None), None, "v1", False),
        (Triggers(), None, None, False),
    ],
)
def test_push_accepted(
    triggers: Triggers, branch: str | None, tag: str | None, accepted: bool
) -> None:
    assert push_accepted(triggers, branch=branch, tag=tag) is accepted


def test_a_push_is_of_a_branch_or_a_tag() -> None:
    with pytest.raises(ValueError, match="not both"):
        push_accepted(Triggers(), branch="main", tag="v1")


# -- next_fire_ms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "after", "fires"),
    [
        ("0 3 * * *", ms(2026, 1, 1, 2, 59), ms(2026, 1, 1, 3, 0)),
        ("0 3 * * *", ms(2026, 1, 1, 3, 0), ms(2026, 1, 2, 3, 0)),  # strictly after
        ("0 3 * * *", ms(2026, 1, 1, 3, 0) - 1, ms(2026, 1, 1, 3, 0)),
        ("0 3 * * *", ms(2026, 1, 1, 3, 0) + 1, ms(2026, 1, 2, 3, 0)),
        ("* * * * *", ms(2026, 1, 1, 3, 0) + 59_999, ms(2026, 1, 1, 3, 1)),
        ("0 0 31 * *", ms(2026, 1, 31, 0, 0), ms(2026, 3, 31, 0, 0)),  # no 31st in February
        ("0 0 L * *", ms(2026, 1, 31, 0, 0), ms(2026, 2, 28, 0, 0)),
        ("0 0 29 2 *", ms(2026, 1, 1, 0, 0), ms(2028, 2, 29, 0, 0)),  # the next leap year
        ("59 23 31 12 *", ms(2026, 12, 31, 23, 59), ms(2027, 12, 31, 23, 59)),
        ("0 0 1 1 *", ms(2026, 12, 31, 23, 59), ms(2027, 1, 1, 0, 0)),
        # UTC has no daylight saving: the nights clocks change in Europe and the US are plain.
        ("30 1 * * *", ms(2026, 3, 29, 0, 0), ms(2026, 3, 29, 1, 30)),
        ("30 1 * * *", ms(2026, 10, 25, 1, 30), ms(2026, 10, 26, 1, 30)),
        ("30 2 * * *", ms(2026, 3, 8, 0, 0), ms(2026, 3, 8, 2, 30)),
        ("0 9 * * 1", ms(2026, 12, 1, 0, 0), ms(2026, 12, 7, 9, 0)),  # 1 Dec 2026 is a Tuesday
        ("*/20 * * * *", ms(2026, 5, 5, 10, 41), ms(2026, 5, 5, 11, 0)),
    ],
)
def test_next_fire_ms(cron: str, after: int, fires: int) -> None:
    assert next_fire_ms(cron, after) == fires


def test_a_bad_cron_has_no_next_fire_time() -> None:
    with pytest.raises(ValueError, match="bad hour"):
        next_fire_ms("0 24 * * *", 0)
    assert cron_problem("0 0 30 2 *") == "invalid cron expression '0 0 30 2 *': bad day-of-month"
    assert cron_problem("0 3 * * mon-fri") is None
