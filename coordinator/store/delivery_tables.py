"""SQLModel tables for continuous delivery: environments, deployments and locks (migration 0007).

Only the store touches these.
"""

from __future__ import annotations

from sqlalchemy import Index, Select, select
from sqlmodel import Field, SQLModel, col

from coordinator.store.coltypes import BigInt


class DeliveryJobRow(SQLModel, table=True):
    """What a job of a build takes part in: its environment and the lock it must hold to run.

    Only jobs with `environment` or `concurrency` have a row; both are frozen at submission.
    """

    __tablename__ = "delivery_jobs"

    job_id: int = Field(primary_key=True, foreign_key="jobs.id")
    build_id: int = Field(index=True)
    # "" for a job that only joins a lock group.
    environment: str = ""
    lock_group: str = Field(index=True)
    lock_order: str
    # Who started the build (a client token's name); a deployment records it.
    actor: str
    # Until the job is final (then cleared lazily by the next claim): claims read only these
    # rows, so their cost follows the lock jobs in flight, not the history of deployments.
    active: bool = Field(default=True, index=True)


class EnvironmentRow(SQLModel, table=True):
    """An environment some submitted pipeline deploys to; its url as the newest pipeline says."""

    __tablename__ = "environments"

    name: str = Field(primary_key=True)
    url: str = ""


class DeployLockRow(SQLModel, table=True):
    """A held lock: one row per group, taken in the claim's transaction, dropped when the
    holder's attempt ends (whichever way)."""

    __tablename__ = "deploy_locks"

    group_name: str = Field(primary_key=True)
    job_id: int = Field(unique=True)
    build_id: int
    acquired_at_ms: int = Field(sa_type=BigInt)


class DeploymentRow(SQLModel, table=True):
    """A deployment job's result, written in the transaction that ended its last attempt."""

    __tablename__ = "deployments"
    # An environment's current deployment (its newest successful one) is one index seek, however
    # long its history.
    __table_args__ = (Index("ix_deployments_current", "environment", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    environment: str = Field(index=True)
    build_id: int = Field(index=True)
    job_id: int
    job_name: str
    status: str
    commit: str = ""
    # The deployed commit's time (lead time for changes); None when unknown.
    committed_at_ms: int | None = Field(default=None, sa_type=BigInt)
    # [{"job", "name", "sha256"}]: what the job received from its needs.
    artifacts_json: str
    # [{"job", "by", "decision", "at_ms", "comment"}] on the job's path (gates record them).
    approvals_json: str = "[]"
    # The deployment a rollback deployed again; None otherwise.
    redeploys: int | None = None
    actor: str
    started_at_ms: int = Field(sa_type=BigInt)
    finished_at_ms: int = Field(sa_type=BigInt)


def deployed_builds() -> Select[int]:
    """Ids of the builds any deployment came from: gc keeps their artifacts and sources."""
    return select(col(DeploymentRow.build_id)).distinct()
