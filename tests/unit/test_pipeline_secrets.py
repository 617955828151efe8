"""The pipeline format's `secrets:` job key: a list of names, validated where it is written."""

from __future__ import annotations

import pytest

from conveyor.pipeline import PipelineError, load_pipeline
from tests.unit.test_pipeline_gates import Problem, doc, problems


def test_a_job_names_its_secrets_in_order() -> None:
    pipeline = load_pipeline(
        doc("""\
          deploy:
            environment: production
            secrets: [DEPLOY_TOKEN, _other2]
            steps: [{run: x}]
          build:
            steps: [{run: x}]
        """)
    )
    assert pipeline.job("deploy").secrets == ("DEPLOY_TOKEN", "_other2")
    assert pipeline.job("build").secrets == ()


REJECTIONS: list[tuple[str, str, list[Problem]]] = [
    (
        "not a list",
        doc("""\
          a:
            secrets: TOKEN
            steps: [{run: x}]
        """),
        [("jobs.a.secrets", "expected a list, got a string", 5)],
    ),
    (
        "names that are no env names",
        doc("""\
          a:
            secrets: [1TOKEN, "MY-TOKEN", 7, ""]
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.secrets[0]",
                "invalid secret name '1TOKEN' (use 1-128 letters, digits and '_', not starting "
                "with a digit)",
                5,
            ),
            (
                "jobs.a.secrets[1]",
                "invalid secret name 'MY-TOKEN' (use 1-128 letters, digits and '_', not "
                "starting with a digit)",
                5,
            ),
            ("jobs.a.secrets[2]", "expected a string, got an integer", 5),
            (
                "jobs.a.secrets[3]",
                "invalid secret name '' (use 1-128 letters, digits and '_', not starting with "
                "a digit)",
                5,
            ),
        ],
    ),
    (
        "a duplicate",
        doc("""\
          a:
            secrets: [T, T]
            steps: [{run: x}]
        """),
        [("jobs.a.secrets[1]", "duplicate secret 'T'", 5)],
    ),
    (
        "too many",
        doc(
            "a:\n  secrets: ["
            + ", ".join(f"S{index}" for index in range(51))
            + "]\n  steps: [{run: x}]\n"
        ),
        [("jobs.a.secrets", "too many secrets (51 > 50)", 5)],
    ),
    (
        "a gate has none",
        doc("""\
          gate:
            approval: {prompt: "ok?"}
            secrets: [T]
        """),
        [("jobs.gate.secrets", "a job with 'approval' is a gate and cannot have 'secrets'", 6)],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in REJECTIONS],
)
def test_rejections(text: str, expected: list[Problem]) -> None:
    assert problems(text) == expected


def test_an_invalid_secret_name_is_an_error_not_a_silent_drop() -> None:
    with pytest.raises(PipelineError):
        load_pipeline(doc("a:\n  secrets: [BAD-NAME]\n  steps: [{run: x}]\n"))
