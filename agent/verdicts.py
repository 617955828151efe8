"""What a step's end means for the attempt, and what its message says about lost output."""

from __future__ import annotations

from collections.abc import Mapping

from agent.executors.base import StepEnd, StepResult
from agent.peer import Verdict
from conveyor.states import Outcome, Reason

# A step that exited 0 (compared by identity: the attempt goes on to the next step).
SUCCESS = Verdict(Outcome.SUCCEEDED)


def judge_step(name: str, result: StepResult, stop_verdict: Verdict | None) -> Verdict:
    """The verdict for step `name`; `stop_verdict` is why the attempt was stopped, if it was."""
    if result.end is StepEnd.EXITED:
        if result.exit_code == 0:
            return SUCCESS
        return Verdict(
            Outcome.FAILED,
            Reason.EXIT_CODE,
            f"step '{name}' exited with code {result.exit_code}",
            result.exit_code,
        )
    if result.end is StepEnd.TIMEOUT:
        return Verdict(
            Outcome.FAILED,
            Reason.TIMEOUT,
            f"step '{name}' was killed: the time limit passed",
            result.exit_code,
        )
    if result.end is StepEnd.STOPPED:
        stopped = stop_verdict or Verdict(Outcome.CANCELED, Reason.CANCELED)
        return Verdict(
            stopped.outcome,
            stopped.reason,
            stopped.message or f"step '{name}' was stopped",
            result.exit_code,
        )
    if result.end is StepEnd.OOM_KILLED:
        message = f"step '{name}' was killed: {result.message}"
        return Verdict(Outcome.FAILED, Reason.OOM_KILLED, message, result.exit_code)
    if result.end is StepEnd.IMAGE_PULL_FAILED:
        return Verdict(Outcome.FAILED, Reason.IMAGE_PULL_FAILED, result.message)
    return Verdict(Outcome.FAILED, Reason.ERROR, f"step '{name}': {result.message}")


def with_log_loss(verdict: Verdict, lost: Mapping[str, int], *, disk: bool) -> Verdict:
    """Says in the attempt's message when output was lost (`lost`: bytes by step name),
    whatever the outcome; `disk` says the spool's disk filled up rather than its limit."""
    if not lost:
        return verdict
    losses = ", ".join(f"step '{name}' lost {count} bytes" for name, count in lost.items())
    full = "spool disk" if disk else "spool"
    note = f"log truncated ({losses}: the agent's {full} was full)"
    message = f"{verdict.message}; {note}" if verdict.message else note
    return Verdict(verdict.outcome, verdict.reason, message, verdict.exit_code)
