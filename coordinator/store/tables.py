"""SQLModel tables: the coordinator's durable state. Only the store touches these."""

from __future__ import annotations

from sqlalchemy import Index, false
from sqlmodel import Field, SQLModel

from coordinator.store.coltypes import BigInt


class BuildRow(SQLModel, table=True):
    __tablename__ = "builds"
    # A repository's older builds of a branch, found when a newer push supersedes them.
    __table_args__ = (Index("ix_builds_trigger_repo", "trigger_repo", "branch"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    status: str = Field(index=True)
    pipeline_yaml: str
    source_name: str
    env_json: str
    cancel_requested: bool = False
    created_at_ms: int = Field(sa_type=BigInt)
    finished_at_ms: int | None = Field(default=None, sa_type=BigInt)
    # gc dropped its source or artifacts: a retry would run without them.
    collected: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # What started it and on what (DESIGN §4.1 `when`); builds before 0006 were all manual.
    event: str = Field(default="manual", sa_column_kwargs={"server_default": "manual"})
    branch: str | None = None
    tag: str | None = None
    # For a rollback: the deployment whose commit and artifacts it deploys again (0008).
    redeploys: int | None = None
    # The name of the client token it was submitted with; builds before 0009 all had `admin`'s.
    started_by: str = Field(default="admin", sa_column_kwargs={"server_default": "admin"})
    # For a build started by a watched repository (0012): which, and the commit it builds.
    trigger_repo: str | None = None
    trigger_commit: str | None = None
    trigger_committed_at_ms: int | None = Field(default=None, sa_type=BigInt)
    trigger_message: str | None = None
    trigger_author: str | None = None
    # Why a build ended failed with no jobs (its pipeline file in the commit is invalid); 0012.
    error: str | None = None


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    # The queue, oldest first, as an index range: a claim reads only the queued jobs it needs,
    # however many jobs have ever run.
    __table_args__ = (Index("ix_jobs_queue", "status", "queued_seq", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(index=True, foreign_key="builds.id")
    position: int
    name: str
    status: str = Field(index=True)
    needs_json: str
    labels_json: str
    # Resolved steps, timeout and retry rule, frozen at submission.
    spec_json: str
    # Order of entry into the queue; oldest first. Set each time the job is (re)queued.
    queued_seq: int | None = Field(default=None, index=True, sa_type=BigInt)
    # When it last entered the queue (its wait for an agent is measured from here).
    queued_at_ms: int | None = Field(default=None, sa_type=BigInt)
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    attempt_count: int = 0
    # Attempts not counted against the retry rule (before a manual retry, or never started).
    retry_base: int = 0
    unstarted_requeues: int = 0
    # An approval gate's prompt, roles and timeout (JSON); None for a job that runs steps.
    approval_json: str | None = None
    # When a waiting gate fails with reason timeout; None while not waiting, or for no timeout.
    approval_deadline_ms: int | None = Field(default=None, sa_type=BigInt)


class AttemptRow(SQLModel, table=True):
    __tablename__ = "attempts"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(index=True, foreign_key="jobs.id")
    build_id: int = Field(index=True)
    number: int
    agent_id: int = Field(index=True)
    lease_token: str
    # None while the attempt runs, then an Outcome value.
    outcome: str | None = Field(default=None, index=True)
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    cancel_requested: bool = False
    started_at_ms: int = Field(sa_type=BigInt)
    finished_at_ms: int | None = Field(default=None, sa_type=BigInt)


class StepRow(SQLModel, table=True):
    __tablename__ = "steps"

    id: int | None = Field(default=None, primary_key=True)
    attempt_id: int = Field(index=True, foreign_key="attempts.id")
    idx: int
    name: str
    status: str
    exit_code: int | None = None
    started_at_ms: int | None = Field(default=None, sa_type=BigInt)
    finished_at_ms: int | None = Field(default=None, sa_type=BigInt)
    log_length: int = Field(default=0, sa_type=BigInt)
    log_lost_bytes: int = Field(default=0, sa_type=BigInt)


class AgentRow(SQLModel, table=True):
    __tablename__ = "agents"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    labels_json: str
    capacity: int
    session_hash: str
    # Set by an operator: active, paused (no new work) or draining (no new work, then exit).
    mode: str = "active"
    registered_at_ms: int = Field(sa_type=BigInt)
    last_seen_ms: int = Field(sa_type=BigInt)
    # SHA-256 of the agent's own credential, issued at its first registration ("" until then).
    credential_hash: str = Field(default="", sa_column_kwargs={"server_default": ""})


class ApprovalRow(SQLModel, table=True):
    """A decision on an approval gate, taken once, with who took it and when (DESIGN §7.12)."""

    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(index=True, foreign_key="jobs.id")
    decision: str
    """"approved" or "rejected"."""
    decided_by: str
    """The name of the token the decision came with."""
    decided_at_ms: int = Field(sa_type=BigInt)
    comment: str = ""
