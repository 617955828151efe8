"""Immutable records of continuous delivery: what a job deploys or locks, and deployments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobDelivery:
    """A job's `environment` and lock, frozen at submission."""

    environment: str
    """"" for a job that only joins a lock group."""
    url: str
    lock_group: str
    """The environment's name unless `concurrency` names a group."""
    lock_order: str


@dataclass(frozen=True)
class DeployedArtifact:
    job: str
    name: str
    sha256: str


@dataclass(frozen=True)
class ApprovalRecord:
    job: str
    by: str
    decision: str
    at_ms: int
    comment: str


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    environment: str
    build_id: int
    job: str
    status: str
    commit: str | None
    """The git commit deployed; None when the source was not git."""
    artifacts: tuple[DeployedArtifact, ...]
    approvals: tuple[ApprovalRecord, ...]
    redeploys: int | None
    """For a rollback, the deployment whose commit and artifacts it deployed again."""
    actor: str
    started_at_ms: int
    finished_at_ms: int
    committed_at_ms: int | None = None
    """The deployed commit's time, as the agent that checked it out read it; None: unknown."""


@dataclass(frozen=True)
class EnvironmentRecord:
    name: str
    url: str | None
    current: DeploymentRecord | None
    """The latest successful deployment; None before the first."""


@dataclass(frozen=True)
class RollbackPlan:
    """A recorded deployment about to be deployed again, and what its build needs to be made."""

    environment: str
    redeploys: int
    """The deployment deployed again."""
    job: str
    pipeline_yaml: str
    source_name: str
    branch: str | None
    tag: str | None
    labels: dict[str, str]
