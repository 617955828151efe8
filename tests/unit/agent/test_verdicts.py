"""A step killed at its memory limit ends the attempt `oom_killed`, saying so."""

from __future__ import annotations

from agent.executors.base import StepEnd, StepResult
from agent.verdicts import judge_step
from conveyor.states import Outcome, Reason


def test_an_oom_killed_step_fails_the_attempt_with_its_reason_and_words() -> None:
    result = StepResult(StepEnd.OOM_KILLED, 137, "out of memory: killed at the 32 MiB limit")
    verdict = judge_step("hog", result, None)
    assert (verdict.outcome, verdict.reason, verdict.exit_code) == (
        Outcome.FAILED,
        Reason.OOM_KILLED,
        137,
    )
    assert verdict.message == "step 'hog' was killed: out of memory: killed at the 32 MiB limit"
