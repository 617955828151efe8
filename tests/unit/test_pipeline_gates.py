"""The pipeline format's delivery gates: `approval` and `when` parsed, and every rejection."""

from __future__ import annotations

from textwrap import dedent, indent

import pytest

from conveyor.pipeline import PipelineError, load_pipeline
from conveyor.pipeline.model import Approval, Condition

Problem = tuple[str, str, int | None]

EVENTS = "push, tag, schedule, manual, rollback"
ROLES = "viewer, developer, deployer, admin"


def doc(body: str) -> str:
    """A pipeline with `jobs:` on line 3; `body` starts on line 4."""
    return "name: p\nimage: img\njobs:\n" + indent(dedent(body), "  ")


def problems(text: str) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    return [(issue.path, issue.message, issue.line) for issue in info.value.issues]


def test_a_gate_has_no_steps_and_takes_defaults() -> None:
    pipeline = load_pipeline(
        doc("""\
          build:
            steps: [{run: x}]
          ship-it:
            needs: [build]
            approval: {prompt: "Ship to production?"}
        """)
    )
    gate = pipeline.job("ship-it")
    assert gate.steps == ()
    assert gate.approval == Approval("Ship to production?", ("deployer",), None)
    assert pipeline.job("build").approval is None
    assert pipeline.job("build").when is None


def test_approval_roles_and_timeout() -> None:
    pipeline = load_pipeline(
        doc("""\
          ship-it:
            approval: {prompt: "go?", roles: [developer, admin], timeout: 24h}
        """)
    )
    assert pipeline.job("ship-it").approval == Approval("go?", ("developer", "admin"), 86400.0)


def test_when_reads_all_three_lists() -> None:
    pipeline = load_pipeline(
        doc("""\
          deploy:
            when: {branch: [main, "release/*"], tag: ["v*"], event: [push, manual]}
            steps: [{run: x}]
          any:
            when: {}
            steps: [{run: x}]
        """)
    )
    assert pipeline.job("deploy").when == Condition(
        branch=("main", "release/*"), tag=("v*",), event=("push", "manual")
    )
    assert pipeline.job("any").when == Condition()


REJECTIONS: list[tuple[str, str, list[Problem]]] = [
    (
        "gate with steps",
        doc("""\
          gate:
            approval: {prompt: "go?"}
            steps: [{run: x}]
        """),
        [("jobs.gate.steps", "a job with 'approval' is a gate and cannot have 'steps'", 6)],
    ),
    (
        "gate with empty steps",
        doc("""\
          gate:
            approval: {prompt: "go?"}
            steps: []
        """),
        [
            ("jobs.gate.steps", "a job with 'approval' is a gate and cannot have 'steps'", 6),
            ("jobs.gate.steps", "job has no steps", 6),
        ],
    ),
    (
        "prompt missing",
        doc("""\
          gate:
            approval: {roles: [admin]}
        """),
        [("jobs.gate.approval", "missing required key 'prompt'", 5)],
    ),
    (
        "prompt empty",
        doc("""\
          gate:
            approval: {prompt: "  "}
        """),
        [("jobs.gate.approval.prompt", "approval prompt is empty", 5)],
    ),
    (
        "prompt not a string",
        doc("""\
          gate:
            approval: {prompt: 12}
        """),
        [("jobs.gate.approval.prompt", "expected a string, got an integer", 5)],
    ),
    (
        "prompt too long",
        doc(f"""\
          gate:
            approval: {{prompt: {"x" * 1001}}}
        """),
        [("jobs.gate.approval.prompt", "prompt too long (1001 > 1000 characters)", 5)],
    ),
    (
        "approval not a mapping",
        doc("""\
          gate:
            approval: yes please
        """),
        [("jobs.gate.approval", "expected a mapping, got a string", 5)],
    ),
    (
        "unknown approval key",
        doc("""\
          gate:
            approval: {prompt: "go?", rolez: [admin]}
        """),
        [
            (
                "jobs.gate.approval.rolez",
                "unknown key 'rolez' in 'approval' of job 'gate' (did you mean 'roles'?)",
                5,
            )
        ],
    ),
    (
        "unknown role",
        doc("""\
          gate:
            approval: {prompt: "go?", roles: [deployr]}
        """),
        [
            (
                "jobs.gate.approval.roles[0]",
                f"unknown role 'deployr' (did you mean 'deployer'? allowed: {ROLES})",
                5,
            )
        ],
    ),
    (
        "duplicate and empty roles",
        doc("""\
          a:
            approval: {prompt: "go?", roles: [admin, admin]}
          b:
            approval: {prompt: "go?", roles: []}
        """),
        [
            ("jobs.a.approval.roles[1]", "duplicate role 'admin'", 5),
            ("jobs.b.approval.roles", f"no roles (allowed: {ROLES})", 7),
        ],
    ),
    (
        "roles not a list",
        doc("""\
          gate:
            approval: {prompt: "go?", roles: admin}
        """),
        [("jobs.gate.approval.roles", "expected a list, got a string", 5)],
    ),
    (
        "bad approval timeout",
        doc("""\
          gate:
            approval: {prompt: "go?", timeout: soon}
        """),
        [
            (
                "jobs.gate.approval.timeout",
                "invalid duration 'soon' (use e.g. 90s, 10m, 1h30m)",
                5,
            )
        ],
    ),
    (
        "unknown when key",
        doc("""\
          a:
            when: {branches: [main]}
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.when.branches",
                "unknown key 'branches' in 'when' of job 'a' (did you mean 'branch'?)",
                5,
            )
        ],
    ),
    (
        "unknown event",
        doc("""\
          a:
            when: {event: [manual, pusj]}
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.when.event[1]",
                f"unknown event 'pusj' (did you mean 'push'? allowed: {EVENTS})",
                5,
            )
        ],
    ),
    (
        "when globs of the wrong kind",
        doc("""\
          a:
            when: {branch: main, tag: [1, ""]}
            steps: [{run: x}]
        """),
        [
            ("jobs.a.when.branch", "expected a list, got a string", 5),
            ("jobs.a.when.tag[0]", "expected a string, got an integer", 5),
            ("jobs.a.when.tag[1]", "empty pattern", 5),
        ],
    ),
    (
        "when glob too long and too many",
        doc(f"""\
          a:
            when: {{branch: [{"b" * 256}], tag: [{", ".join(["t"] * 51)}]}}
            steps: [{{run: x}}]
        """),
        [
            ("jobs.a.when.branch[0]", "pattern too long (256 > 255 characters)", 5),
            ("jobs.a.when.tag", "too many patterns (51 > 50)", 5),
        ],
    ),
    (
        "when not a mapping",
        doc("""\
          a:
            when: [main]
            steps: [{run: x}]
        """),
        [("jobs.a.when", "expected a mapping, got a list", 5)],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in REJECTIONS],
)
def test_rejections(text: str, expected: list[Problem]) -> None:
    assert sorted(problems(text)) == sorted(expected)
