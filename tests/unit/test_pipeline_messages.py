"""What a rejected pipeline tells its author: the key it probably meant, wherever the unknown key
sits, and how to write a value that YAML reads as a second key."""

from __future__ import annotations

from textwrap import dedent

import pytest

from conveyor.pipeline import PipelineError, load_pipeline


def _errors(text: str) -> list[str]:
    with pytest.raises(PipelineError) as info:
        load_pipeline(dedent(text), "ci.yml")
    return str(info.value).splitlines()


GOOD_JOB = "    steps: [{run: x}]\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    timout: 5m\n" + GOOD_JOB,
            "ci.yml:5:5: jobs.build.timout: unknown key 'timout' in job 'build' "
            "(did you mean 'timeout'?)",
            id="job",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    step: [{run: x}]\n",
            "ci.yml:5:5: jobs.build.step: unknown key 'step' in job 'build' "
            "(did you mean 'steps'?)",
            id="job-steps",
        ),
        pytest.param(
            "name: p\nimage: i\njob:\n  build:\n" + GOOD_JOB,
            "ci.yml:3:1: job: unknown key 'job' in the pipeline (did you mean 'jobs'?)",
            id="top-level",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    steps:\n      - {run: x}\n"
            "      - {run: y, imgae: z}\n",
            "ci.yml:7:18: jobs.build.steps[1].imgae: unknown key 'imgae' in step 2 of job "
            "'build' (did you mean 'image'?)",
            id="step",
        ),
        pytest.param(
            "name: p\nimage: i\non:\n  pushh: {}\njobs:\n  build:\n" + GOOD_JOB,
            "ci.yml:4:3: on.pushh: unknown key 'pushh' in 'on' (did you mean 'push'?)",
            id="on",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    when: {branchh: main}\n" + GOOD_JOB,
            "ci.yml:5:12: jobs.build.when.branchh: unknown key 'branchh' in 'when' of job "
            "'build' (did you mean 'branch'?)",
            id="when",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    environment: {name: prod, ulr: x}\n"
            + GOOD_JOB,
            "ci.yml:5:31: jobs.build.environment.ulr: unknown key 'ulr' in 'environment' of "
            "job 'build' (did you mean 'url'?)",
            id="deploy-environment",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    concurrency: {group: g, ordr: x}\n" + GOOD_JOB,
            "ci.yml:5:29: jobs.build.concurrency.ordr: unknown key 'ordr' in 'concurrency' of "
            "job 'build' (did you mean 'order'?)",
            id="deploy-concurrency",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    retry: {maxx: 2}\n" + GOOD_JOB,
            "ci.yml:5:13: jobs.build.retry.maxx: unknown key 'maxx' in 'retry' of job 'build' "
            "(did you mean 'max'?)",
            id="retry",
        ),
        pytest.param(
            "name: p\nimage: i\njobs:\n  build:\n    zzz: 1\n" + GOOD_JOB,
            "ci.yml:5:5: jobs.build.zzz: unknown key 'zzz' in job 'build' (allowed: image, "
            "labels, env, steps, needs, artifacts, timeout, retry, approval, when, "
            "environment, concurrency, secrets, privileged, user, interruptible)",
            id="nothing-close",
        ),
    ],
)
def test_an_unknown_key_names_the_likeliest_one(text: str, expected: str) -> None:
    # A misspelt required key is also reported missing, on its own line.
    assert expected in _errors(text)


def test_an_unquoted_colon_in_a_value_says_to_quote_it() -> None:
    text = """\
        name: p
        image: i
        jobs:
          build:
            steps:
              - run: echo "FAIL: x"
        """
    assert _errors(text) == [
        "ci.yml:6:24: invalid YAML: mapping values are not allowed here: a value containing "
        "': ' must be quoted, or written as a block with |"
    ]


@pytest.mark.parametrize(
    "text",
    ["name: p\njobs: [\n", "a: *nowhere\n", "name: 'p\n"],
)
def test_other_yaml_errors_get_no_quoting_hint(text: str) -> None:
    (message,) = _errors(text)
    assert message.startswith("ci.yml:")
    assert "invalid YAML" in message
    assert "must be quoted" not in message
