"""Records of build sources, blobs and artifacts, as the artifact index hands them out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceSpec:
    """Where a build's source comes from: an uploaded snapshot, or a git URL and ref."""

    snapshot_sha256: str = ""
    git_url: str = ""
    git_ref: str = ""
    git_commit: str = ""
    collected: bool = False


@dataclass(frozen=True)
class ArtifactRecord:
    job: str
    name: str
    sha256: str
    size: int
    mode: int
    attempt_number: int


@dataclass(frozen=True)
class Inputs:
    """What an attempt starts from: its build's source and the artifacts of the jobs it needs."""

    source: SourceSpec | None
    needed: tuple[ArtifactRecord, ...]
    pipeline_yaml: str
    job_name: str
    snapshot_size: int = 0
    artifact_paths: tuple[str, ...] | None = None
    """The job's `artifacts.paths` as frozen at submission; None for jobs stored before that,
    whose rule is in `pipeline_yaml`."""
    artifacts_always: bool = False


@dataclass(frozen=True)
class NewArtifact:
    build_id: int
    attempt_id: int
    name: str
    sha256: str
    size: int
    mode: int


@dataclass(frozen=True)
class Collected:
    """What garbage collection dropped: how many builds' files, and the blobs now unreferenced."""

    builds: int
    digests: tuple[str, ...]


def duplicate_artifact_message(name: str, held_sha256: str) -> str:
    """Why a second upload of an artifact name in one attempt is refused."""
    return (
        f"artifact {name!r} was already uploaded by this attempt with other content "
        f"(sha256 {held_sha256[:12]}...); each artifact name is kept once per attempt"
    )
