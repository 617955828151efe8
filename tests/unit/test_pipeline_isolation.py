"""The pipeline keys that change how a job's containers are confined: `privileged` and `user`."""

from __future__ import annotations

from textwrap import dedent, indent

import pytest

from conveyor.pipeline import PRIVILEGED_LABEL, PipelineError, load_pipeline, resolve_steps
from coordinator.domain.submit import jobs_from_pipeline

Problem = tuple[str, str, int | None]
USER_RULE = "a user name or uid, optionally ':' and a group name or gid (e.g. 1000:1000)"


def doc(body: str) -> str:
    """A pipeline with `jobs:` on line 3; `body` starts on line 4."""
    return "name: p\nimage: img\njobs:\n" + indent(dedent(body), "  ")


def problems(text: str) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    return [(issue.path, issue.message, issue.line) for issue in info.value.issues]


def test_privileged_and_user_are_read_and_inherited_by_steps() -> None:
    pipeline = load_pipeline(
        doc("""\
        build:
          privileged: true
          user: 1000
          steps:
            - run: a
            - run: b
              user: "nobody:nogroup"
        plain:
          steps: [{run: c}]
        """)
    )
    build, plain = pipeline.job("build"), pipeline.job("plain")
    assert (build.privileged, build.user, plain.privileged, plain.user) == (
        True,
        "1000",
        False,
        None,
    )
    assert [step.user for step in resolve_steps(pipeline, build)] == ["1000", "nobody:nogroup"]
    assert [step.user for step in resolve_steps(pipeline, plain)] == [""]


def test_a_privileged_job_asks_for_the_label_of_agents_that_allow_it() -> None:
    pipeline = load_pipeline(
        doc("""\
        build:
          privileged: true
          labels: {os: linux}
          steps: [{run: a}]
        plain:
          steps: [{run: c}]
        """)
    )
    build, plain = jobs_from_pipeline(pipeline, {})
    key, value = PRIVILEGED_LABEL
    assert build.labels == {"os": "linux", key: value}
    assert build.spec.privileged and not plain.spec.privileged
    assert plain.labels == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "a:\n  privileged: 1\n  steps: [{run: x}]\n",
            [("jobs.a.privileged", "expected true or false, got an integer", 5)],
        ),
        (
            "a:\n  privileged: 'yes'\n  steps: [{run: x}]\n",
            [("jobs.a.privileged", "expected true or false, got a string", 5)],
        ),
        (
            "a:\n  user: ''\n  steps: [{run: x}]\n",
            [("jobs.a.user", f"invalid user '' ({USER_RULE})", 5)],
        ),
        (
            "a:\n  user: 'a b'\n  steps: [{run: x}]\n",
            [("jobs.a.user", f"invalid user 'a b' ({USER_RULE})", 5)],
        ),
        (
            "a:\n  steps:\n    - run: x\n      user: [root]\n",
            [("jobs.a.steps[0].user", f"expected a user ({USER_RULE}), got a list", 7)],
        ),
        (
            "a:\n  steps:\n    - run: x\n      user: '1:2:3'\n",
            [("jobs.a.steps[0].user", f"invalid user '1:2:3' ({USER_RULE})", 7)],
        ),
    ],
)
def test_rejections(body: str, expected: list[Problem]) -> None:
    assert problems(doc(body)) == expected
