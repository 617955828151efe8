"""Scheduling decisions as pure functions: no SQL, no gRPC, no clocks.

The store calls these inside its transactions and applies what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.states import BuildStatus, JobStatus, Reason

_BLOCKING = frozenset({JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED})


@dataclass(frozen=True)
class JobState:
    name: str
    status: JobStatus
    needs: tuple[str, ...]


@dataclass(frozen=True)
class Transition:
    name: str
    status: JobStatus
    reason: str = ""
    message: str = ""


def labels_match(required: Mapping[str, str], offered: Mapping[str, str]) -> bool:
    """A job runs only on an agent that carries every one of its labels, with the same value."""
    return all(offered.get(key) == value for key, value in required.items())


def advance(jobs: Sequence[JobState]) -> list[Transition]:
    """Moves waiting jobs on: queued once all needs succeeded, skipped once one cannot.

    Skips cascade: a job skipped here blocks its own dependents in the same pass.
    """
    status = {job.name: job.status for job in jobs}
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
                message = f"not run: {', '.join(blocked)} did not succeed"
                transitions.append(
                    Transition(job.name, JobStatus.SKIPPED, Reason.DEPENDENCY_FAILED, message)
                )
                changed = True
            elif all(status[need] is JobStatus.SUCCEEDED for need in job.needs):
                status[job.name] = JobStatus.QUEUED
                transitions.append(Transition(job.name, JobStatus.QUEUED))
                changed = True
    return transitions


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


@dataclass(frozen=True)
class AgentView:
    labels: Mapping[str, str]
    capacity: int
    running: int
    online: bool


def queued_reason(labels: Mapping[str, str], agents: Sequence[AgentView]) -> tuple[Reason, str]:
    """Says why a queued job has not started: no agent could take it, or they are all busy."""
    matching = [agent for agent in agents if labels_match(labels, agent.labels)]
    online = [agent for agent in matching if agent.online]
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)"
    if not online:
        if matching:
            return Reason.WAITING_FOR_AGENT, f"the agents with labels {wanted} are offline"
        return Reason.WAITING_FOR_AGENT, f"no connected agent has labels {wanted}"
    if all(agent.running >= agent.capacity for agent in online):
        return Reason.WAITING_FOR_CAPACITY, f"all {len(online)} matching agents are busy"
    return Reason.WAITING_FOR_AGENT, "waiting for a matching agent to ask for work"
