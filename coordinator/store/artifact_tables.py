"""SQLModel tables for blobs, artifacts and build sources. Only the stores touch these."""

from __future__ import annotations

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from coordinator.store.coltypes import BigInt


class BlobRow(SQLModel, table=True):
    __tablename__ = "blobs"

    sha256: str = Field(primary_key=True)
    size: int = Field(sa_type=BigInt)
    created_at_ms: int = Field(index=True, sa_type=BigInt)


class ArtifactRow(SQLModel, table=True):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("attempt_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    build_id: int = Field(index=True)
    job_name: str
    attempt_id: int = Field(index=True)
    attempt_number: int
    name: str
    sha256: str = Field(index=True)
    size: int = Field(sa_type=BigInt)
    mode: int
    created_at_ms: int = Field(sa_type=BigInt)


class BuildSourceRow(SQLModel, table=True):
    __tablename__ = "build_sources"

    build_id: int = Field(primary_key=True)
    # Exactly one kind is set: an uploaded snapshot, or a git repository and ref.
    snapshot_sha256: str = Field(default="", index=True)
    git_url: str = ""
    git_ref: str = ""
    # The commit the ref resolved to, reported by the first agent that checked it out.
    git_commit: str = ""
    # That commit's committer time, as the agent read it (None: unknown, as before 0008).
    git_committed_at_ms: int | None = Field(default=None, sa_type=BigInt)
    # Set by garbage collection: the snapshot may be gone.
    collected: bool = False
