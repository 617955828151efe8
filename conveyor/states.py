"""Lifecycle states shared by the coordinator, the agent and the CLI, mirrored from types.proto."""

from __future__ import annotations

from enum import StrEnum


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in _FINAL_BUILD


class JobStatus(StrEnum):
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    WAITING_FOR_APPROVAL = "waiting_for_approval"  # a gate whose needs succeeded, undecided

    @property
    def final(self) -> bool:
        return self in _FINAL_JOB


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


class Outcome(StrEnum):
    """How an attempt or a step ended, as the agent reports it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class Reason(StrEnum):
    """Short codes saying why an attempt ended or what a job waits for; retry rules name them."""

    EXIT_CODE = "exit_code"
    TIMEOUT = "timeout"
    IMAGE_PULL_FAILED = "image_pull_failed"
    OOM_KILLED = "oom_killed"  # a step hit the agent's --memory limit
    AGENT_LOST = "agent_lost"
    AGENT_STOPPED = "agent_stopped"
    CANCELED = "canceled"
    ERROR = "error"
    SOURCE_FAILED = "source_failed"  # the snapshot or git checkout could not be put in place
    ARTIFACTS_FAILED = "artifacts_failed"  # needed artifacts missing, or refused on collection
    WAITING_FOR_NEEDS = "waiting_for_needs"
    WAITING_FOR_AGENT = "waiting_for_agent"
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    DEPENDENCY_FAILED = "dependency_failed"
    CONDITION = "condition"  # its `when:` (or a needed job's) is false for this build
    WAITING_FOR_APPROVAL = "waiting_for_approval"  # a gate: `conveyor approve` or `reject`
    REJECTED = "rejected"  # a gate someone rejected
    WAITING_FOR_LOCK = "waiting_for_lock"  # a deploy lock or concurrency group is held
    OUTDATED = "outdated"  # a newer build is already deployed to the environment
    # A newer build's job took the lock (`order: newest_first`), or a newer push to the branch
    # canceled an `interruptible: true` job (see coordinator.policy.superseding).
    SUPERSEDED = "superseded"


_FINAL_BUILD = frozenset({BuildStatus.SUCCEEDED, BuildStatus.FAILED, BuildStatus.CANCELED})
_FINAL_JOB = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED}
)
