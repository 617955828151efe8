"""Baseline: the schema exactly as `SQLModel.metadata.create_all` made it before migrations.

Revision ID: 0001_baseline
Revises: (none)

A database made by that code has no alembic_version table; coordinator.store.schema recognises
its tables and columns (BASELINE_COLUMNS there) and stamps it with this revision instead of
running it. Integers are plain INTEGER here, as they were; 0003 widens some on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True, nullable=False)


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{columns[0]}", table, list(columns))


def upgrade() -> None:
    _builds_and_jobs()
    _attempts_and_steps()
    _agents()
    _blobs_and_artifacts()


def _builds_and_jobs() -> None:
    op.create_table(
        "builds",
        _id(),
        _text("name"),
        _text("status"),
        _text("pipeline_yaml"),
        _text("source_name"),
        _text("env_json"),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _int("created_at_ms"),
        _int("finished_at_ms", nullable=True),
    )
    _index("builds", "status")
    op.create_table(
        "jobs",
        _id(),
        sa.Column("build_id", sa.Integer(), sa.ForeignKey("builds.id"), nullable=False),
        _int("position"),
        _text("name"),
        _text("status"),
        _text("needs_json"),
        _text("labels_json"),
        _text("spec_json"),
        _int("queued_seq", nullable=True),
        _text("reason"),
        _text("message"),
        _int("exit_code", nullable=True),
        _int("attempt_count"),
        _int("retry_base"),
        _int("unstarted_requeues"),
    )
    op.create_index("ix_jobs_queue", "jobs", ["status", "queued_seq", "id"])
    for column in ("status", "build_id", "queued_seq"):
        _index("jobs", column)


def _attempts_and_steps() -> None:
    op.create_table(
        "attempts",
        _id(),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        _int("build_id"),
        _int("number"),
        _int("agent_id"),
        _text("lease_token"),
        _text("outcome", nullable=True),
        _text("reason"),
        _text("message"),
        _int("exit_code", nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _int("started_at_ms"),
        _int("finished_at_ms", nullable=True),
    )
    for column in ("build_id", "job_id", "outcome", "agent_id"):
        _index("attempts", column)
    op.create_table(
        "steps",
        _id(),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), nullable=False),
        _int("idx"),
        _text("name"),
        _text("status"),
        _int("exit_code", nullable=True),
        _int("started_at_ms", nullable=True),
        _int("finished_at_ms", nullable=True),
        _int("log_length"),
        _int("log_lost_bytes"),
    )
    _index("steps", "attempt_id")


def _agents() -> None:
    op.create_table(
        "agents",
        _id(),
        _text("name"),
        _text("labels_json"),
        _int("capacity"),
        _text("session_hash"),
        _text("mode"),
        _int("registered_at_ms"),
        _int("last_seen_ms"),
        sa.UniqueConstraint("name"),
    )


def _blobs_and_artifacts() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(), primary_key=True, nullable=False),
        _int("size"),
        _int("created_at_ms"),
    )
    _index("blobs", "created_at_ms")
    op.create_table(
        "artifacts",
        _id(),
        _int("build_id"),
        _text("job_name"),
        _int("attempt_id"),
        _int("attempt_number"),
        _text("name"),
        _text("sha256"),
        _int("size"),
        _int("mode"),
        _int("created_at_ms"),
        sa.UniqueConstraint("attempt_id", "name"),
    )
    for column in ("build_id", "attempt_id", "sha256"):
        _index("artifacts", column)
    op.create_table(
        "build_sources",
        sa.Column("build_id", sa.Integer(), primary_key=True, nullable=False),
        _text("snapshot_sha256"),
        _text("git_url"),
        _text("git_ref"),
        _text("git_commit"),
        sa.Column("collected", sa.Boolean(), nullable=False),
    )
    _index("build_sources", "snapshot_sha256")


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
