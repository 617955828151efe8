"""Scheduling decisions as pure functions: no SQL, no gRPC, no clocks.

The store calls these inside its transactions and applies what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from conveyor.pipeline.model import PRIVILEGED_LABEL
from conveyor.states import BuildStatus, JobStatus, Reason

_BLOCKING = frozenset({JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED})


@dataclass(frozen=True)
class JobState:
    name: str
    status: JobStatus
    needs: tuple[str, ...]
    reason: str = ""
    prompt: str | None = None
    """An approval gate's prompt; None for a job that runs on an agent."""


@dataclass(frozen=True)
class Transition:
    name: str
    status: JobStatus
    reason: str = ""
    message: str = ""


# Labels an agent takes only the jobs that ask for (DESIGN §8): a shell-executor agent runs steps
# on its host without isolation, so a job without labels must never land there by accident.
EXCLUSIVE_LABELS: Mapping[str, str] = {"executor": "shell"}


def labels_match(required: Mapping[str, str], offered: Mapping[str, str]) -> bool:
    """A job runs only on an agent that carries every one of its labels, with the same value,
    and that carries none of the exclusive labels the job does not ask for."""
    return _offers_all(required, offered) and not _exclusive_unasked(required, offered)


def _offers_all(required: Mapping[str, str], offered: Mapping[str, str]) -> bool:
    return all(offered.get(key) == value for key, value in required.items())


def _exclusive_unasked(required: Mapping[str, str], offered: Mapping[str, str]) -> list[str]:
    return [
        f"{key}={value}"
        for key, value in EXCLUSIVE_LABELS.items()
        if offered.get(key) == value and required.get(key) != value
    ]


def advance(jobs: Sequence[JobState]) -> list[Transition]:
    """Moves waiting jobs on: queued once all needs succeeded, skipped once one cannot.

    Skips cascade: a job skipped here blocks its own dependents in the same pass.
    """
    status = {job.name: job.status for job in jobs}
    reasons = {job.name: job.reason for job in jobs}
    transitions: list[Transition] = []
    changed = True
    while changed:
        changed = False
        for job in jobs:
            if status[job.name] is not JobStatus.WAITING:
                continue
            blocked = [need for need in job.needs if status[need] in _BLOCKING]
            if blocked:
                status[job.name] = JobStatus.SKIPPED
                skip = _skip_for(blocked, status, reasons)
                reasons[job.name] = skip.reason
                transitions.append(replace(skip, name=job.name))
                changed = True
            elif all(status[need] is JobStatus.SUCCEEDED for need in job.needs):
                ready = _ready(job)
                status[job.name] = ready.status
                transitions.append(ready)
                changed = True
    return transitions


def _ready(job: JobState) -> Transition:
    # A gate needs no agent: it waits for a person's decision, never in the queue.
    if job.prompt is not None:
        return Transition(
            job.name, JobStatus.WAITING_FOR_APPROVAL, Reason.WAITING_FOR_APPROVAL, job.prompt
        )
    return Transition(job.name, JobStatus.QUEUED)


def _skip_for(
    blocked: Sequence[str], status: Mapping[str, JobStatus], reasons: Mapping[str, str]
) -> Transition:
    # Skipped needs whose condition was false pass that on: the dependent was not meant to run
    # on this build either, which is not a failure.
    if all(skipped_by_condition(status[need], reasons[need]) for need in blocked):
        message = f"not run: {', '.join(blocked)} skipped by condition"
        return Transition("", JobStatus.SKIPPED, Reason.CONDITION, message)
    message = f"not run: {', '.join(blocked)} did not succeed"
    return Transition("", JobStatus.SKIPPED, Reason.DEPENDENCY_FAILED, message)


def skipped_by_condition(status: JobStatus, reason: str) -> bool:
    return status is JobStatus.SKIPPED and reason == Reason.CONDITION


def outcome_status(status: JobStatus, reason: str) -> JobStatus:
    """A job's status as the build's outcome counts it: a condition skip is not a failure."""
    return JobStatus.SUCCEEDED if skipped_by_condition(status, reason) else status


def build_outcome(statuses: Iterable[JobStatus], cancel_requested: bool) -> BuildStatus | None:
    """The build's final status once every job is final, else None."""
    final = list(statuses)
    if not all(status.final for status in final):
        return None
    if cancel_requested or JobStatus.CANCELED in final:
        return BuildStatus.CANCELED
    if all(status is JobStatus.SUCCEEDED for status in final):
        return BuildStatus.SUCCEEDED
    return BuildStatus.FAILED


def waiting_message(needs: Sequence[str], statuses: Mapping[str, JobStatus]) -> str:
    pending = [need for need in needs if statuses.get(need) is not JobStatus.SUCCEEDED]
    return f"waits for {', '.join(pending)}"


# Agents named one by one in a wait reason before the rest are counted.
NAMED_IN_REASON = 3


@dataclass(frozen=True)
class AgentView:
    labels: Mapping[str, str]
    capacity: int  # 0 while it takes no work
    running: int
    online: bool
    name: str = ""
    # Why it takes no work though online: "paused" or "draining" (an operator's or its own);
    # "" when it does.
    held: str = ""


def queued_reason(labels: Mapping[str, str], agents: Sequence[AgentView]) -> tuple[Reason, str]:
    """Says why a queued job has not started: no agent could take it, they are all busy, or
    the free ones are paused or draining (named)."""
    matching = [agent for agent in agents if labels_match(labels, agent.labels)]
    online = [agent for agent in matching if agent.online]
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)"
    if not online:
        if matching:
            return Reason.WAITING_FOR_AGENT, f"the agents with labels {wanted} are offline"
        privileged = _privileged_reason(labels, agents)
        if privileged:
            return Reason.WAITING_FOR_AGENT, privileged
        exclusive = sorted(
            {
                label
                for agent in agents
                if agent.online and _offers_all(labels, agent.labels)
                for label in _exclusive_unasked(labels, agent.labels)
            }
        )
        if exclusive:
            asked = " or ".join(exclusive)
            return Reason.WAITING_FOR_AGENT, (
                f"no connected agent has labels {wanted}; agents labelled {asked} take only "
                "jobs whose labels ask for it"
            )
        return Reason.WAITING_FOR_AGENT, f"no connected agent has labels {wanted}"
    if all(agent.running >= agent.capacity for agent in online):
        held = [agent for agent in online if agent.held]
        if not held:
            return Reason.WAITING_FOR_CAPACITY, f"all {len(online)} matching agents are busy"
        return Reason.WAITING_FOR_CAPACITY, _held_message(held, len(online) - len(held))
    return Reason.WAITING_FOR_AGENT, "waiting for a matching agent to ask for work"


def _privileged_reason(labels: Mapping[str, str], agents: Sequence[AgentView]) -> str:
    """Why a privileged job waits when that alone keeps the connected agents from it."""
    key, value = PRIVILEGED_LABEL
    if labels.get(key) != value:
        return ""
    rest = {k: v for k, v in labels.items() if k != key}
    others = ", ".join(f"{k}={v}" for k, v in sorted(rest.items())) or "(none)"
    flag = "(start one with --allow-privileged)"
    if any(agent.online and labels_match(rest, agent.labels) for agent in agents):
        return (
            f"the job asks for privileged: true; the connected agents with labels {others} "
            f"do not allow privileged containers {flag}"
        )
    return (
        f"the job asks for privileged: true; no connected agent has labels {others} and "
        f"allows privileged containers {flag}"
    )


def _held_message(held: Sequence[AgentView], busy: int) -> str:
    parts = [f"agent {agent.name} is {agent.held}" for agent in held[:NAMED_IN_REASON]]
    if len(held) > NAMED_IN_REASON:
        parts.append(f"{len(held) - NAMED_IN_REASON} more are paused or draining")
    message = ", ".join(parts)
    if busy == 1:
        message += "; the other matching agent is busy"
    elif busy > 1:
        message += f"; the other {busy} matching agents are busy"
    return message
