"""`CI` and `CONVEYOR_*` belong to the build: no pipeline `env:`, secret or `--env` may set them."""

from __future__ import annotations

import pytest

from conveyor.cli.errors import CliError
from conveyor.cli.run_command import parse_env
from conveyor.pipeline import PipelineError, load_pipeline
from coordinator.domain.submit import EnvError, check_env_overrides

Problem = tuple[str, str, int | None, int | None]

RESERVED = """\
name: p
image: img
env: {CI: "false"}
jobs:
  a:
    env: {CONVEYOR_BRANCH: main, CONVEYORS: ok, MY_CI: ok}
    secrets: [CONVEYOR_TOKEN]
    steps:
      - run: x
        env: {CONVEYOR_: x}
"""


def _reserved(name: str) -> str:
    return f"'{name}' is reserved (CI and CONVEYOR_* are set for every step by conveyor)"


def test_reserved_names_are_refused_where_they_are_written() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline(RESERVED)
    found = [(i.path, i.message, i.line, i.column) for i in info.value.issues]
    assert found == [
        ("env", _reserved("CI"), 3, 7),
        ("jobs.a.env", _reserved("CONVEYOR_BRANCH"), 6, 11),
        ("jobs.a.secrets[0]", _reserved("CONVEYOR_TOKEN"), 7, 15),
        ("jobs.a.steps[0].env", _reserved("CONVEYOR_"), 10, 15),
    ]


def test_a_stored_pipeline_accepted_before_the_rule_still_reads() -> None:
    # Attempts and rollbacks of builds submitted before it re-read their pipeline.
    pipeline = load_pipeline(RESERVED, recorded=True)
    assert pipeline.env == {"CI": "false"}
    assert pipeline.job("a").secrets == ("CONVEYOR_TOKEN",)


@pytest.mark.parametrize("pair", ["CI=false", "CONVEYOR_COMMIT=abc"])
def test_run_env_refuses_reserved_names(pair: str) -> None:
    name = pair.partition("=")[0]
    with pytest.raises(CliError, match=f"--env '{pair}': '{name}' is reserved"):
        parse_env([pair])
    with pytest.raises(EnvError, match=f"env name \"{name}\": '{name}' is reserved"):
        check_env_overrides({name: "x"})


def test_names_that_only_look_alike_are_free() -> None:
    assert parse_env(["CONVEYORS=1", "MY_CI=2", "ci=3"]) == {
        "CONVEYORS": "1",
        "MY_CI": "2",
        "ci": "3",
    }
    check_env_overrides({"CONVEYORS": "1", "conveyor_x": "2"})
