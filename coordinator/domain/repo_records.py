"""Watched repositories and the builds they start, as plain records (DESIGN §4.2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.records import LiveAttempt, NewJob, Trigger
from coordinator.policy.conditions import BuildContext

__all__ = [
    "DEFAULT_HEAD",
    "CheckResult",
    "NewBuild",
    "RepoRecord",
    "Trigger",
    "ref_kind",
    "schedule_entry",
    "schedule_key",
]

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
DEFAULT_HEAD = "HEAD"
"""The key of a repository's heads that names its default branch's ref (not a commit)."""


@dataclass(frozen=True)
class RepoRecord:
    name: str
    url: str
    pipeline_path: str
    poll_s: float
    # The webhook secret as sealed by the coordinator's key; None: webhooks are refused.
    sealed_secret: bytes | None = field(repr=False)
    # Ref name (refs/heads/main, refs/tags/v1) to commit, as the last check saw them.
    heads: dict[str, str]
    last_check_ms: int | None
    last_error: str
    failures: int
    next_check_ms: int
    created_at_ms: int
    created_by: str
    # A schedule entry's key (`schedule_key`) to its next fire time (ms), and the commit of the
    # default branch whose pipeline file they were read from ("" before the first read).
    schedules: dict[str, int] = field(default_factory=dict)
    schedules_commit: str = ""


def schedule_key(cron: str, branch: str) -> str:
    return f"{branch}|{cron}"


def schedule_entry(key: str) -> tuple[str, str]:
    """(cron, branch) of a `schedule_key`. A cron has no '|'; a branch name may."""
    branch, _, cron = key.rpartition("|")
    return cron, branch


@dataclass(frozen=True)
class NewBuild:
    """A build a check decided to start. `error` set: a failed build with no jobs that says why
    (its pipeline file is missing or invalid in the commit)."""

    name: str
    pipeline_yaml: str
    source_name: str
    jobs: tuple[NewJob, ...]
    source: SourceSpec
    context: BuildContext
    trigger: Trigger
    error: str = ""


@dataclass(frozen=True)
class CheckResult:
    """What one check recorded: the builds it started (ids) and the attempts it asked to stop."""

    build_ids: tuple[int, ...] = ()
    superseded: tuple[LiveAttempt, ...] = ()


def ref_kind(ref: str) -> tuple[str | None, str | None]:
    """(branch, tag) of a ref name; (None, None) for other refs."""
    if ref.startswith(BRANCH_PREFIX):
        return ref.removeprefix(BRANCH_PREFIX), None
    if ref.startswith(TAG_PREFIX):
        return None, ref.removeprefix(TAG_PREFIX)
    return None, None
