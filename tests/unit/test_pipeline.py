"""The pipeline format: parsing DESIGN §4's example, every rejection, limits and resolution."""

from __future__ import annotations

import pickle
import random
import time
from textwrap import dedent, indent

import pytest

from conveyor.pipeline import (
    ArtifactRule,
    Pipeline,
    PipelineError,
    PipelineIssue,
    ResolvedStep,
    RetryRule,
    StepDef,
    load_pipeline,
    resolve_steps,
)
from conveyor.pipeline.durations import DurationError, format_duration, parse_duration
from conveyor.pipeline.graph import find_cycles
from conveyor.pipeline.limits import MAX_TEXT_BYTES

# DESIGN §4's example verbatim, but for one comment shortened to fit the line length.
DESIGN_EXAMPLE = """\
name: shop
image: conveyor/busybox            # default image for every job (a job or step may override it)
env: {FLAVOUR: pumpkin}            # build-wide environment; job and step `env` override it
jobs:
  build:
    image: conveyor/busybox        # default image for this job's steps
    labels: {os: linux}            # the agent must carry all of these labels
    env: {BATCH: small}
    steps:
      - name: make
        env: {SCOOPS: "2"}
        run: |                     # run with `sh -e` in the workspace (/workspace)
          echo "$FLAVOUR $BATCH $SCOOPS" > scoop.txt
      - name: check
        image: conveyor/busybox    # a step may override the image
        run: test -s scoop.txt
    artifacts: [scoop.txt, "dist/**"]
    timeout: 10m
    retry: {max: 2, when: [agent_lost]}
  test:
    needs: [build]                 # DAG edge; artifacts of needed jobs are fetched
    steps:
      - run: cat scoop.txt
"""

Problem = tuple[str, str, int | None]


def problems(text: str | bytes) -> list[Problem]:
    """(path, message, line) of every issue, in the order PipelineError lists them."""
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    return [(issue.path, issue.message, issue.line) for issue in info.value.issues]


def doc(body: str) -> str:
    """A pipeline with name and image on lines 1-2 and `jobs:` on line 3; `body` starts line 4."""
    return "name: p\nimage: img\njobs:\n" + indent(dedent(body), "  ")


# -- the valid example ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop() -> Pipeline:
    return load_pipeline(DESIGN_EXAMPLE, source="shop.yml")


def test_example_pipeline_level(shop: Pipeline) -> None:
    assert shop.name == "shop"
    assert shop.image == "conveyor/busybox"
    assert shop.env == {"FLAVOUR": "pumpkin"}
    assert [job.name for job in shop.jobs] == ["build", "test"]


def test_example_build_job(shop: Pipeline) -> None:
    build = shop.job("build")
    assert build.image == "conveyor/busybox"
    assert build.labels == {"os": "linux"}
    assert build.env == {"BATCH": "small"}
    assert build.needs == ()
    assert build.artifacts == ArtifactRule(paths=("scoop.txt", "dist/**"), when="on_success")
    assert build.timeout_s == 600.0
    assert build.retry == RetryRule(max=2, when=("agent_lost",))
    assert build.steps == (
        StepDef(
            name="make",
            run='echo "$FLAVOUR $BATCH $SCOOPS" > scoop.txt\n',
            image=None,
            env={"SCOOPS": "2"},
            timeout_s=None,
        ),
        StepDef(
            name="check",
            run="test -s scoop.txt",
            image="conveyor/busybox",
            env={},
            timeout_s=None,
        ),
    )


def test_example_test_job_defaults(shop: Pipeline) -> None:
    test = shop.job("test")
    assert test.needs == ("build",)
    assert test.image is None
    assert test.labels == {}
    assert test.env == {}
    assert test.artifacts == ArtifactRule()
    assert test.timeout_s is None
    assert test.retry == RetryRule()
    assert [step.name for step in test.steps] == ["step-1"]


def test_job_lookup_of_unknown_name_raises_key_error(shop: Pipeline) -> None:
    with pytest.raises(KeyError, match="nope"):
        shop.job("nope")


def test_bytes_input_and_pickling(shop: Pipeline) -> None:
    assert load_pipeline(DESIGN_EXAMPLE.encode()) == shop
    assert pickle.loads(pickle.dumps(shop)) == shop


def test_resolve_steps_applies_env_precedence_and_image_fallback(shop: Pipeline) -> None:
    assert resolve_steps(shop, shop.job("build")) == [
        ResolvedStep(
            name="make",
            image="conveyor/busybox",
            run='echo "$FLAVOUR $BATCH $SCOOPS" > scoop.txt\n',
            env={"FLAVOUR": "pumpkin", "BATCH": "small", "SCOOPS": "2"},
            timeout_s=None,
        ),
        ResolvedStep(
            name="check",
            image="conveyor/busybox",
            run="test -s scoop.txt",
            env={"FLAVOUR": "pumpkin", "BATCH": "small"},
            timeout_s=None,
        ),
    ]
    (step,) = resolve_steps(shop, shop.job("test"), {"FLAVOUR": "vanilla", "EXTRA": "1"})
    assert step.image == "conveyor/busybox"  # from the pipeline: neither job nor step sets one
    assert step.env == {"FLAVOUR": "vanilla", "EXTRA": "1"}


def test_resolve_steps_most_specific_wins() -> None:
    pipeline = load_pipeline(
        dedent("""\
        name: p
        image: pipe-img
        env: {A: pipe, B: pipe, C: pipe, D: pipe}
        jobs:
          j:
            image: job-img
            env: {B: job, C: job, D: job}
            timeout: 1h30m
            steps:
              - run: one
                env: {C: step, D: step}
              - run: two
                image: step-img
                timeout: 90
        """)
    )
    first, second = resolve_steps(pipeline, pipeline.job("j"), {"D": "cli"})
    assert first.env == {"A": "pipe", "B": "job", "C": "step", "D": "cli"}
    assert (first.name, first.image, first.timeout_s) == ("step-1", "job-img", None)
    assert (second.name, second.image, second.timeout_s) == ("step-2", "step-img", 90.0)
    assert second.env == {"A": "pipe", "B": "job", "C": "job", "D": "cli"}
    assert pipeline.job("j").timeout_s == 5400.0


def test_a_pipeline_without_any_image_is_valid_and_leaves_the_image_to_the_agent() -> None:
    text = "name: p\njobs:\n  x:\n    steps:\n      - run: a\n      - run: b\n        image: i\n"
    pipeline = load_pipeline(text)
    first, second = resolve_steps(pipeline, pipeline.job("x"))
    assert (first.image, second.image) == ("", "i")


def test_scalar_env_and_label_values_keep_their_source_text() -> None:
    pipeline = load_pipeline(
        doc("""\
          j:
            env: {N: 2, B: true, F: 1.50, H: 0x1F, Q: "quoted", D: 2024-01-02, E: ""}
            labels: {gpu: yes, cores: 8}
            steps: [{run: x}]
        """)
    )
    job = pipeline.job("j")
    assert job.env == {
        "N": "2",
        "B": "true",
        "F": "1.50",
        "H": "0x1F",
        "Q": "quoted",
        "D": "2024-01-02",
        "E": "",
    }
    assert job.labels == {"gpu": "yes", "cores": "8"}


def test_artifacts_mapping_form_and_retry_reasons() -> None:
    pipeline = load_pipeline(
        doc("""\
          j:
            steps: [{run: x}]
            artifacts: {paths: [out/*.log], when: always}
            retry:
              max: 10
              when: [agent_lost, timeout, exit_code, image_pull_failed, agent_stopped]
        """)
    )
    job = pipeline.job("j")
    assert job.artifacts == ArtifactRule(paths=("out/*.log",), when="always")
    assert job.retry.max == 10
    assert len(job.retry.when) == 5


def test_anchors_and_aliases_are_allowed() -> None:
    pipeline = load_pipeline(
        doc("""\
          a:
            env: &common {X: "1"}
            steps: [{run: x}]
          b:
            env: *common
            steps: [{run: y}]
        """)
    )
    assert pipeline.job("b").env == {"X": "1"}


# -- rejections ----------------------------------------------------------------------------------

JOB_KEYS = (
    "image, labels, env, steps, needs, artifacts, timeout, retry, approval, when, environment,"
    " concurrency, secrets, privileged, user, interruptible"
)
REASONS = "agent_lost, timeout, exit_code, image_pull_failed, agent_stopped, oom_killed"

REJECTIONS: list[tuple[str, str, list[Problem]]] = [
    (
        "unknown job key",
        doc("""\
          build:
            stepz: []
            steps: [{run: x}]
        """),
        [("jobs.build.stepz", "unknown key 'stepz' in job 'build' (did you mean 'steps'?)", 5)],
    ),
    (
        "unknown top-level and step keys",
        doc("""\
          build:
            steps:
              - run: x
                when: always
        """)
        + "triggers: [push]\n",
        [
            (
                "jobs.build.steps[0].when",
                "unknown key 'when' in step 1 of job 'build' "
                "(allowed: name, run, image, env, timeout, user)",
                7,
            ),
            (
                "triggers",
                "unknown key 'triggers' in the pipeline "
                "(allowed: name, image, env, source, on, jobs)",
                8,
            ),
        ],
    ),
    (
        "duplicate job",
        doc("""\
          build:
            steps: [{run: x}]
          build:
            steps: [{run: y}]
        """),
        [("jobs", "duplicate key 'build'", 6)],
    ),
    (
        "duplicate key in a step",
        doc("""\
          build:
            steps:
              - run: x
                run: y
        """),
        [("jobs.build.steps[0]", "duplicate key 'run'", 7)],
    ),
    (
        "steps is a mapping",
        doc("""\
          build:
            steps: {run: x}
        """),
        [("jobs.build.steps", "expected a list, got a mapping", 5)],
    ),
    (
        "steps missing",
        doc("""\
          build:
            image: x
        """),
        [("jobs.build", "missing required key 'steps'", 4)],
    ),
    (
        "steps empty",
        doc("""\
          build:
            steps: []
        """),
        [("jobs.build.steps", "job has no steps", 5)],
    ),
    (
        "run missing",
        doc("""\
          build:
            steps:
              - name: a
        """),
        [("jobs.build.steps[0]", "missing required key 'run'", 6)],
    ),
    (
        "run empty and run not a string",
        doc("""\
          build:
            steps:
              - run: "  "
              - run: [a, b]
        """),
        [
            ("jobs.build.steps[0].run", "run script is empty", 6),
            ("jobs.build.steps[1].run", "expected a string, got a list", 7),
        ],
    ),
    (
        "step is not a mapping",
        doc("""\
          build:
            steps:
              - echo hi
        """),
        [("jobs.build.steps[0]", "expected a mapping, got a string", 6)],
    ),
    (
        "job is null",
        doc("""\
          build:
        """),
        [("jobs.build", "expected a mapping, got null", 4)],
    ),
    (
        "name missing, jobs missing",
        "image: img\n",
        [
            ("", "missing required key 'name'", 1),
            ("", "missing required key 'jobs'", 1),
        ],
    ),
    (
        "name not a string",
        "name: 42\nimage: i\njobs: {a: {steps: [{run: x}]}}\n",
        [("name", "expected a string, got an integer", 1)],
    ),
    (
        "jobs empty",
        "name: p\njobs: {}\n",
        [("jobs", "pipeline has no jobs", 2)],
    ),
    (
        "jobs is a list",
        "name: p\njobs:\n  - build\n",
        [("jobs", "expected a mapping, got a list", 3)],
    ),
    (
        "env values must be scalars",
        doc("""\
          build:
            env:
              A:
              B: [1]
              C: {x: 1}
            steps: [{run: x}]
        """),
        [
            ("jobs.build.env.A", "expected a string, number or boolean, got null", 6),
            ("jobs.build.env.B", "expected a string, number or boolean, got a list", 7),
            ("jobs.build.env.C", "expected a string, number or boolean, got a mapping", 8),
        ],
    ),
    (
        "env names",
        "name: p\nimage: i\nenv: {1X: a, A-B: b, _ok: c}\njobs: {a: {steps: [{run: x}]}}\n",
        [
            (
                "env",
                "invalid environment variable name '1X' "
                "(use letters, digits and '_', not starting with a digit)",
                3,
            ),
            (
                "env",
                "invalid environment variable name 'A-B' "
                "(use letters, digits and '_', not starting with a digit)",
                3,
            ),
        ],
    ),
    (
        "label names and values",
        doc(f"""\
          build:
            labels:
              -bad: x
              ok/zone.1: {"v" * 64}
              fine: {"v" * 63}
            steps: [{{run: x}}]
        """),
        [
            (
                "jobs.build.labels",
                "invalid label name '-bad' (use 1-63 letters, digits, '_', '.', '-' or '/', "
                "starting with a letter or digit)",
                6,
            ),
            ("jobs.build.labels.ok/zone.1", "label value too long (64 > 63 characters)", 7),
        ],
    ),
    (
        "job and step names",
        doc(f"""\
          my job:
            steps: [{{run: x, name: -dash}}]
          {"j" * 65}:
            steps: [{{run: x, name: {"s" * 64}}}]
        """),
        [
            (
                "jobs",
                "invalid job name 'my job' (use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit)",
                4,
            ),
            (
                "jobs.my job.steps[0].name",
                "invalid step name '-dash' (use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit)",
                5,
            ),
            (
                "jobs",
                f"invalid job name '{'j' * 65}' (use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit)",
                6,
            ),
        ],
    ),
    (
        "duplicate step names, explicit and defaulted",
        doc("""\
          build:
            steps:
              - {name: make, run: a}
              - {name: make, run: b}
              - {run: c}
              - {name: step-3, run: d}
        """),
        [
            ("jobs.build.steps[1].name", "duplicate step name 'make'", 7),
            ("jobs.build.steps[3].name", "duplicate step name 'step-3'", 9),
        ],
    ),
    (
        "duplicate default step name on the later, unnamed step",
        doc("""\
          build:
            steps:
              - {name: step-2, run: a}
              - {run: b}
        """),
        [("jobs.build.steps[1]", "duplicate step name 'step-2'", 7)],
    ),
    (
        "unknown need with suggestion",
        doc("""\
          build:
            steps: [{run: x}]
          test:
            needs: [buld]
            steps: [{run: x}]
        """),
        [("jobs.test.needs[0]", "unknown job 'buld' (did you mean 'build'?)", 7)],
    ),
    (
        "unknown need without suggestion, self need, duplicate need",
        doc("""\
          build:
            steps: [{run: x}]
          test:
            needs:
              - zzz
              - test
              - build
              - build
            steps: [{run: x}]
        """),
        [
            ("jobs.test.needs[0]", "unknown job 'zzz'", 8),
            ("jobs.test.needs[1]", "job 'test' cannot need itself", 9),
            ("jobs.test.needs[3]", "duplicate need 'build'", 11),
        ],
    ),
    (
        "needs is a string",
        doc("""\
          build:
            needs: test
            steps: [{run: x}]
        """),
        [("jobs.build.needs", "expected a list, got a string", 5)],
    ),
    (
        "cycle",
        doc("""\
          a:
            needs: [b]
            steps: [{run: x}]
          b:
            needs: [c]
            steps: [{run: x}]
          c:
            needs: [a]
            steps: [{run: x}]
          d:
            needs: [a]
            steps: [{run: x}]
        """),
        [("jobs.a.needs", "dependency cycle: a -> b -> c -> a", 5)],
    ),
    (
        "two separate cycles, reported from their earliest job",
        doc("""\
          x:
            steps: [{run: x}]
          b:
            needs: [a]
            steps: [{run: x}]
          a:
            needs: [b]
            steps: [{run: x}]
          c:
            needs: [x, d]
            steps: [{run: x}]
          d:
            needs: [c]
            steps: [{run: x}]
        """),
        [
            ("jobs.b.needs", "dependency cycle: b -> a -> b", 7),
            ("jobs.c.needs", "dependency cycle: c -> d -> c", 13),
        ],
    ),
    (
        "image with spaces",
        doc("""\
          x:
            image: "busy box"
            steps: [{run: x}]
        """),
        [
            (
                "jobs.x.image",
                "invalid image 'busy box' (expected a non-empty name without spaces)",
                5,
            )
        ],
    ),
    (
        "bad timeouts",
        doc("""\
          x:
            timeout: 10 minutes
            steps:
              - {run: a, timeout: 0s}
              - {run: b, timeout: 8d}
              - {run: c, timeout: 169h}
              - {run: d, timeout: true}
              - {run: e, timeout: -5}
        """),
        [
            ("jobs.x.timeout", "invalid duration '10 minutes' (use e.g. 90s, 10m, 1h30m)", 5),
            ("jobs.x.steps[0].timeout", "duration must be greater than zero, got '0s'", 7),
            ("jobs.x.steps[1].timeout", "invalid duration '8d' (use e.g. 90s, 10m, 1h30m)", 8),
            ("jobs.x.steps[2].timeout", "duration '169h' is longer than the limit of 7 days", 9),
            (
                "jobs.x.steps[3].timeout",
                "expected a duration (use e.g. 90s, 10m, 1h30m), got a boolean",
                10,
            ),
            ("jobs.x.steps[4].timeout", "invalid duration '-5' (use e.g. 90s, 10m, 1h30m)", 11),
        ],
    ),
    (
        "bad retry",
        doc("""\
          a:
            steps: [{run: x}]
            retry: {max: 11, when: [agent_lots, timeout, timeout]}
          b:
            steps: [{run: x}]
            retry: {max: two, when: [timeout]}
          c:
            steps: [{run: x}]
            retry: {max: 1}
          d:
            steps: [{run: x}]
            retry: 3
        """),
        [
            ("jobs.a.retry.max", "expected an integer from 0 to 10, got 11", 6),
            ("jobs.a.retry.when[0]", f"unknown value 'agent_lots' (allowed: {REASONS})", 6),
            ("jobs.a.retry.when[2]", "duplicate reason 'timeout'", 6),
            ("jobs.b.retry.max", "expected an integer from 0 to 10, got a string", 9),
            ("jobs.c.retry", f"'when' is required when max > 0 (reasons: {REASONS})", 12),
            ("jobs.d.retry", "expected a mapping, got an integer", 15),
        ],
    ),
    (
        "bad artifacts",
        doc("""\
          a:
            steps: [{run: x}]
            artifacts: [/etc/passwd, ../up, ok/../../x, ""]
          b:
            steps: [{run: x}]
            artifacts: {paths: [x], when: sometimes}
          c:
            steps: [{run: x}]
            artifacts: {when: always}
          d:
            steps: [{run: x}]
            artifacts: out.txt
        """),
        [
            (
                "jobs.a.artifacts[0]",
                "invalid artifact path '/etc/passwd' (expected a path in the workspace)",
                6,
            ),
            (
                "jobs.a.artifacts[1]",
                "invalid artifact path '../up' (expected a path in the workspace)",
                6,
            ),
            (
                "jobs.a.artifacts[2]",
                "invalid artifact path 'ok/../../x' (expected a path in the workspace)",
                6,
            ),
            (
                "jobs.a.artifacts[3]",
                "invalid artifact path '' (expected a path in the workspace)",
                6,
            ),
            (
                "jobs.b.artifacts.when",
                "unknown value 'sometimes' (allowed: on_success, always)",
                9,
            ),
            ("jobs.c.artifacts", "missing required key 'paths'", 12),
            (
                "jobs.d.artifacts",
                "expected a list of paths or a mapping with 'paths' and 'when', got a string",
                15,
            ),
        ],
    ),
    (
        "merge keys are refused",
        doc("""\
          a: &base
            steps: [{run: x}]
          b:
            <<: *base
        """),
        [
            ("jobs.b", "YAML merge keys ('<<') are not supported", 7),
            ("jobs.b", "missing required key 'steps'", 6),
        ],
    ),
    (
        "non-string keys",
        doc("""\
          a:
            steps: [{run: x}]
            env:
              ? [x]
              : 1
              ~: 2
        """),
        [
            ("jobs.a.env", "expected a string key, got a list", 7),
            ("jobs.a.env", "expected a string key, got null", 9),
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


def test_independent_problems_are_all_reported_in_line_order() -> None:
    found = problems(
        doc("""\
          a:
            steps: [{run: x}]
            needs: [nope]
          b:
            stepz: []
            steps: [{run: x, timeout: soon}]
        """)
    )
    assert [line for _, _, line in found] == [6, 8, 9]
    assert [path for path, _, _ in found] == [
        "jobs.a.needs[0]",
        "jobs.b.stepz",
        "jobs.b.steps[0].timeout",
    ]


def test_reporting_stops_after_one_hundred_problems() -> None:
    jobs = "".join(f"j{i}:\n  steps: [{{run: x}}]\n  needs: [nope{i}]\n" for i in range(150))
    found = problems(doc(jobs))
    assert len(found) == 101
    assert found[0] == ("", "too many problems; stopped after the first 100", None)
    assert found[-1] == ("jobs.j99.needs[0]", "unknown job 'nope99'", 303)


def test_huge_user_values_are_shortened_in_messages() -> None:
    key = "k" * 1000  # PyYAML caps plain keys at 1024 characters
    ((path, message, line),) = problems(doc(f"a:\n  steps: [{{run: x}}]\n  {key}: 1\n"))
    assert (path, line) == (f"jobs.a.{key}", 6)
    assert message == f"unknown key '{'k' * 75}...' in job 'a' (allowed: {JOB_KEYS})"


# -- the document as a whole ---------------------------------------------------------------------


def test_yaml_syntax_error_has_problem_position_and_text() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline("name: p\njobs:\n  a: [1, 2\n  b: 3\n")
    (issue,) = info.value.issues
    assert issue.path == ""
    assert issue.message.startswith("invalid YAML: while parsing a flow sequence")
    assert "expected ',' or ']'" in issue.message
    assert (issue.line, issue.column) == (4, 4)


def test_tab_indentation_is_a_syntax_error() -> None:
    ((path, message, line),) = problems("name: p\njobs:\n\ta: 1\n")
    assert (path, line) == ("", 3)
    assert "found character '\\t' that cannot start any token" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("", "pipeline is empty", None)),
        ("# only a comment\n", ("", "pipeline is empty", None)),
        ("---\n...\n", ("", "pipeline is empty", 2)),
        ("~\n", ("", "pipeline is empty", 1)),
        ("- a\n- b\n", ("", "expected a mapping, got a list", 1)),
        ("just text\n", ("", "expected a mapping, got a string", 1)),
        (
            "name: a\njobs: {}\n---\nname: b\n",
            ("", "expected a single YAML document, found more than one", 3),
        ),
        ("a: *nowhere\n", ("", "invalid YAML: found undefined alias 'nowhere'", 1)),
        (
            "name: p\x00\n",
            (
                "",
                "invalid YAML: unacceptable character #x0000: special characters are not allowed",
                1,
            ),
        ),
    ],
)
def test_document_level_rejections(text: str, expected: Problem) -> None:
    assert problems(text) == [expected]


def test_non_utf8_bytes_name_the_offending_byte() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline(b"name: p\njobs: caf\xe9\n", source="up.yml")
    (issue,) = info.value.issues
    assert issue == PipelineIssue("", "not valid UTF-8 text at byte 17", 2, 10)
    assert str(info.value) == "up.yml:2:10: not valid UTF-8 text at byte 17"


def test_lone_surrogates_and_nul_escapes_are_refused_where_they_are() -> None:
    """A quoted scalar can spell what no agent can be sent (a lone surrogate is not Unicode: it
    cannot be encoded as UTF-8); refused at submission, the place named, keys included."""
    text = (
        'name: p\nimage: busybox\nenv: {"A": "x\\0y"}\njobs:\n'
        '  "b\\udfff":\n    steps: [{run: "true"}]\n'
        '  a:\n    steps: [{run: "echo \\ud800"}]\n'
    )
    found = problems(text)
    assert ("env.A", "invalid character U+0000 (a NUL character)", 3) in found
    assert ("jobs", "invalid character U+DFFF (a lone surrogate, not Unicode text)", 5) in found
    surrogate = "invalid character U+D800 (a lone surrogate, not Unicode text)"
    assert ("jobs.a.steps[0].run", surrogate, 8) in found
    # A character outside the BMP, written as one escape, is fine.
    load_pipeline('name: p\nimage: i\njobs:\n  a:\n    steps: [{run: "echo \\U0001F600"}]\n')


def test_utf8_bom_is_accepted() -> None:
    assert load_pipeline(b"\xef\xbb\xbf" + DESIGN_EXAMPLE.encode()).name == "shop"


# -- absurd sizes --------------------------------------------------------------------------------


def _jobs(count: int) -> str:
    return "".join(f"  j{i}: {{steps: [{{run: x}}]}}\n" for i in range(count))


def test_text_over_one_mib_is_rejected_before_parsing() -> None:
    text = "name: p\n#" + "x" * MAX_TEXT_BYTES + "\n"
    size = len(text)
    assert problems(text) == [
        ("", f"pipeline too large ({size} bytes > 1048576 bytes, 1 MiB)", None)
    ]
    assert problems(text.encode()) == problems(text)


def test_too_many_jobs() -> None:
    assert problems(doc(_jobs(250))) == [("jobs", "too many jobs (250 > 200)", 4)]
    assert len(load_pipeline(doc(_jobs(200))).jobs) == 200


def test_too_many_steps() -> None:
    steps = "".join(f"      - run: s{i}\n" for i in range(101))
    assert problems(doc("  a:\n    steps:\n" + steps)) == [
        ("jobs.a.steps", "too many steps (101 > 100)", 6)
    ]


def test_run_script_over_64_kib() -> None:
    script = "x" * (64 * 1024 + 1)
    assert problems(doc(f"  a:\n    steps:\n      - run: {script}\n")) == [
        ("jobs.a.steps[0].run", "run script too long (65537 bytes > 65536)", 6)
    ]
    assert load_pipeline(doc(f"  a:\n    steps:\n      - run: {script[1:]}\n"))


def test_too_many_env_vars_labels_and_needs() -> None:
    env = ", ".join(f"V{i}: x" for i in range(201))
    labels = ", ".join(f"l{i}: x" for i in range(51))
    needs = ", ".join(f"j{i}" for i in range(51))
    text = doc(
        f"  a:\n    env: {{{env}}}\n    labels: {{{labels}}}\n    needs: [{needs}]\n"
        "    steps: [{run: x}]\n" + _jobs(51)
    )
    assert problems(text) == [
        ("jobs.a.env", "too many environment variables (201 > 200)", 5),
        ("jobs.a.labels", "too many labels (51 > 50)", 6),
        ("jobs.a.needs", "too many needs (51 > 50)", 7),
    ]


def test_deep_nesting_is_rejected_without_recursion_error() -> None:
    ((path, message, line),) = problems("name: p\njobs: " + "[" * 5000 + "]" * 5000 + "\n")
    assert (path, message, line) == ("", "document nested too deeply (more than 20 levels)", 2)
    ((_, message, _),) = problems("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 40)))
    assert message == "document nested too deeply (more than 20 levels)"


def test_billion_laughs_in_an_unread_key_is_cheap() -> None:
    lines = ['lol0: &lol0 ["lol"]']
    lines += [f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 10)]
    start = time.monotonic()
    found = problems("\n".join(lines) + "\n")
    assert time.monotonic() - start < 2
    message = "unknown key 'lol9' in the pipeline (allowed: name, image, env, source, on, jobs)"
    assert ("lol9", message, 10) in found


def test_billion_laughs_through_the_schema_hits_the_node_budget() -> None:
    # Every alias below is a legal value, so only the visit budget stops the expansion:
    # 200 jobs x 100 steps x 200 env vars would be millions of visits.
    env = ", ".join(f"V{i}: x" for i in range(200))
    steps = ", ".join([f"&step {{run: x, env: {{{env}}}}}"] + ["*step"] * 99)
    text = doc(f"j0: &job {{steps: [{steps}]}}\n" + "".join(f"j{i}: *job\n" for i in range(1, 200)))
    start = time.monotonic()
    found = problems(text)
    assert time.monotonic() - start < 2
    assert found[-1][1] == "too many YAML nodes (more than 20000, aliases counted at each use)"


def test_a_long_document_is_cut_short_while_composing() -> None:
    text = "name: p\njobs: [" + ", ".join(["x"] * 30_000) + "]\n"
    ((_, message, line),) = problems(text)
    assert (message, line) == ("too many YAML nodes (more than 20000)", 2)


def test_mutated_documents_never_raise_anything_but_pipeline_error() -> None:
    rng = random.Random(20240601)
    source = DESIGN_EXAMPLE.encode()
    alphabet = b" \n\t:-[]{}&*!|>'\"#,?%@`~\x00\xff0aZ"
    for _ in range(400):
        data = bytearray(source)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.4:
                data[position] = rng.choice(alphabet)
            elif choice < 0.7:
                del data[position : position + rng.randint(1, 20)]
            else:
                data[position:position] = data[rng.randrange(len(data)) :][: rng.randint(1, 40)]
        try:
            load_pipeline(bytes(data))
        except PipelineError as exc:
            assert exc.issues
            assert all(issue.line is None or issue.line >= 1 for issue in exc.issues)


# -- the error object ----------------------------------------------------------------------------


def test_error_string_is_one_compiler_style_line_per_issue() -> None:
    text = doc("""\
      test:
        needs: [buld]
        stepz: 1
        steps: [{run: x}]
    """)
    with pytest.raises(PipelineError) as info:
        load_pipeline(text, source="ci/pipeline.yml")
    assert str(info.value) == (
        "ci/pipeline.yml:5:13: jobs.test.needs[0]: unknown job 'buld'\n"
        "ci/pipeline.yml:6:5: jobs.test.stepz: unknown key 'stepz' in job 'test' "
        "(did you mean 'steps'?)"
    )
    assert info.value.source == "ci/pipeline.yml"
    assert isinstance(info.value, ValueError)


def test_error_formatting_omits_unknown_parts_and_sorts_by_line() -> None:
    error = PipelineError(
        [
            PipelineIssue("jobs.b", "second", 9, 3),
            PipelineIssue("", "whole document", None, None),
            PipelineIssue("jobs.a", "first", 2, None),
        ],
        source="p.yml",
    )
    assert str(error).splitlines() == [
        "p.yml: whole document",
        "p.yml:2: jobs.a: first",
        "p.yml:9:3: jobs.b: second",
    ]


def test_error_survives_pickling() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline("name: p\njobs: {}\n")
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.issues == info.value.issues
    assert str(copy) == str(info.value)


# -- durations and cycles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        ("1.5s", 1.5),
        ("1h1m1s", 3661.0),
        ("0.5h", 1800.0),
        ("90", 90.0),
        ("168h", 604800.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "s", "10 m", "1m1h", "1h1h", "1d", "10minutes", "-1s", "1e3s", ".5s", "\u0661\u0660s"],
)
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", ["0s", "0", 0, -3, "0h0m0s"])
def test_parse_duration_rejects_zero_and_negative(value: str | int) -> None:
    with pytest.raises(DurationError, match="greater than zero"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["168h1s", "604801", 10**9, float("inf"), "9" * 400])
def test_parse_duration_rejects_over_seven_days(value: str | int | float) -> None:
    with pytest.raises(DurationError, match="longer than the limit of 7 days"):
        parse_duration(value)


def test_parse_duration_rejects_booleans() -> None:
    with pytest.raises(DurationError):
        parse_duration(True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.5, "1.5s"), (45, "45s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (7200, "2h")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_find_cycles() -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycles({"a": ["a"]}) == [["a", "a"]]
    # One cycle per tangle: the shortest through its earliest node.
    assert find_cycles({"a": ["b", "c"], "b": ["a"], "c": ["b"]}) == [["a", "b", "a"]]
    assert find_cycles({"z": ["y"], "y": ["x"], "x": ["z"], "q": ["q"]}) == [
        ["z", "y", "x", "z"],
        ["q", "q"],
    ]
