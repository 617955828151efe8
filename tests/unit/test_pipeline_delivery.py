"""The continuous-delivery keys of a job: `environment` and `concurrency` (DESIGN §4.1)."""

from __future__ import annotations

from textwrap import dedent, indent

import pytest

from conveyor.pipeline import PipelineError, load_pipeline
from conveyor.pipeline.model import Concurrency, Environment

Problem = tuple[str, str, int | None]


def doc(body: str) -> str:
    """A pipeline with name and image on lines 1-2 and `jobs:` on line 3; `body` starts line 4."""
    return "name: p\nimage: img\njobs:\n" + indent(dedent(body), "  ")


def problems(text: str) -> list[Problem]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    return [(issue.path, issue.message, issue.line) for issue in info.value.issues]


def test_environment_as_a_name_and_as_a_mapping() -> None:
    pipeline = load_pipeline(
        doc("""\
          staging:
            environment: staging
            steps: [{run: x}]
          production:
            environment: {name: production, url: "https://shop.example/a?b=c"}
            steps: [{run: x}]
          build:
            steps: [{run: x}]
        """)
    )
    assert pipeline.job("staging").environment == Environment("staging")
    assert pipeline.job("production").environment == Environment(
        "production", "https://shop.example/a?b=c"
    )
    assert pipeline.job("build").environment is None
    assert pipeline.job("build").concurrency is None


def test_concurrency_order_defaults_to_oldest_first() -> None:
    pipeline = load_pipeline(
        doc("""\
          a:
            concurrency: {group: db-migrations}
            steps: [{run: x}]
          b:
            concurrency: {group: db-migrations, order: newest_first}
            steps: [{run: x}]
        """)
    )
    assert pipeline.job("a").concurrency == Concurrency("db-migrations", "oldest_first")
    assert pipeline.job("b").concurrency == Concurrency("db-migrations", "newest_first")


NAME_RULE = "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
URL_RULE = "expected an http:// or https:// URL"

REJECTIONS: list[tuple[str, str, list[Problem]]] = [
    (
        "environment name",
        doc("""\
          a:
            environment: "prod uction"
            steps: [{run: x}]
        """),
        [("jobs.a.environment", f"invalid environment name 'prod uction' ({NAME_RULE})", 5)],
    ),
    (
        "environment of the wrong kind",
        doc("""\
          a:
            environment: [production]
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.environment",
                "expected an environment name or a mapping with 'name' and 'url', got a list",
                5,
            )
        ],
    ),
    (
        "environment mapping without a name, with an unknown key",
        doc("""\
          a:
            environment:
              url: https://x.example
              nmae: production
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.environment.nmae",
                "unknown key 'nmae' in 'environment' of job 'a' (did you mean 'name'?)",
                7,
            ),
            ("jobs.a.environment", "missing required key 'name'", 6),
        ],
    ),
    (
        "environment url not http",
        doc("""\
          a:
            environment: {name: production, url: "ftp://shop.example"}
            steps: [{run: x}]
          b:
            environment: {name: production, url: "https://"}
            steps: [{run: x}]
          c:
            environment: {name: production, url: 12}
            steps: [{run: x}]
        """),
        [
            ("jobs.a.environment.url", f"invalid url 'ftp://shop.example' ({URL_RULE})", 5),
            ("jobs.b.environment.url", f"invalid url 'https://' ({URL_RULE})", 8),
            ("jobs.c.environment.url", "expected a string, got an integer", 11),
        ],
    ),
    (
        "environment url too long",
        doc(f"""\
          a:
            environment: {{name: production, url: "https://x.example/{"a" * 2100}"}}
            steps: [{{run: x}}]
        """),
        [("jobs.a.environment.url", "url too long (2118 > 2048 characters)", 5)],
    ),
    (
        "concurrency order misspelt",
        doc("""\
          a:
            concurrency: {group: deploy, order: newest-first}
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.concurrency.order",
                "unknown value 'newest-first' (allowed: oldest_first, newest_first;"
                " did you mean 'newest_first'?)",
                5,
            )
        ],
    ),
    (
        "a deployment job in another group than its environment",
        doc("""\
          a:
            environment: production
            concurrency: {group: other, order: newest_first}
            steps: [{run: x}]
        """),
        [
            (
                "jobs.a.concurrency.group",
                "a deployment job's group must be its environment 'production' (got 'other');"
                " set only 'order' beside 'environment'",
                6,
            )
        ],
    ),
    (
        "concurrency without a group, group name invalid",
        doc("""\
          a:
            concurrency: {order: oldest_first}
            steps: [{run: x}]
          b:
            concurrency: {group: "-x"}
            steps: [{run: x}]
          c:
            concurrency: deploy
            steps: [{run: x}]
        """),
        [
            ("jobs.a.concurrency", "missing required key 'group'", 5),
            ("jobs.b.concurrency.group", f"invalid group name '-x' ({NAME_RULE})", 8),
            ("jobs.c.concurrency", "expected a mapping, got a string", 11),
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in REJECTIONS],
)
def test_rejections(text: str, expected: list[Problem]) -> None:
    assert sorted(problems(text), key=lambda p: p[2] or 0) == sorted(
        expected, key=lambda p: p[2] or 0
    )
