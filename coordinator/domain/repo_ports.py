"""What the repository watcher needs of the store and of git, as Protocols (see
`coordinator.domain.ports`: every method blocks and runs on the store or file threads)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from coordinator.domain.errors import GitError
from coordinator.domain.repo_records import CheckResult, NewBuild, RepoRecord


class RepoStore(Protocol):
    """Watched repositories (DESIGN §4.2). Unknown names raise NotFoundError."""

    def add(self, repo: RepoRecord) -> RepoRecord:
        """Records a new repository with its current heads (audited as its creator's);
        ConflictError when the name is taken."""
        ...

    def remove(self, name: str, by: str) -> RepoRecord: ...

    def list(self) -> list[RepoRecord]: ...

    def get(self, name: str) -> RepoRecord: ...

    def due(self, now: int, limit: int) -> builtins.list[RepoRecord]:
        """Repositories whose next check is at or before `now` (ms), the most overdue first."""
        ...

    def record_check(
        self,
        name: str,
        *,
        seen: Mapping[str, str],
        heads: Mapping[str, str],
        builds: Sequence[NewBuild],
        schedules: Mapping[str, int],
        schedules_commit: str,
        next_check_ms: int,
        supersede: bool,
    ) -> CheckResult:
        """In one transaction: the new heads and schedule times, and the builds they start;
        with `supersede`, the interruptible jobs of older push builds of the same branches are
        canceled (reason superseded). ConflictError, nothing changed, when the stored heads are
        no longer `seen` (another check recorded first)."""
        ...

    def record_failure(self, name: str, error: str, next_check_ms: int) -> None:
        """A failed check: its error, one more failure in a row, and when to try again."""
        ...


class GitRemote(Protocol):
    """Git on the coordinator's side; every method blocks and may raise GitError."""

    def heads(self, url: str) -> dict[str, str]:
        """`refs/heads/...` and `refs/tags/...` of `url` to the commit each names."""
        ...

    def fetch(self, name: str, url: str, commits: list[str]) -> set[str]:
        """Brings `commits` into the cache clone of `name`; those of them that are commits
        (a tag may name a tree or a blob)."""
        ...

    def show(self, name: str, commit: str, path: str, max_bytes: int) -> bytes | None:
        """The file in the commit, None when it has none."""
        ...

    def commit_info(self, name: str, commit: str) -> CommitInfo: ...

    def drop(self, name: str) -> None: ...


@dataclass(frozen=True)
class CommitInfo:
    committed_at_ms: int | None
    subject: str
    author: str


class NoGit:
    """The git of a coordinator built without one (in-process tests): every call fails."""

    def _refuse(self) -> GitError:
        return GitError("this coordinator has no git")

    def heads(self, url: str) -> dict[str, str]:
        raise self._refuse()

    def fetch(self, name: str, url: str, commits: list[str]) -> set[str]:
        raise self._refuse()

    def show(self, name: str, commit: str, path: str, max_bytes: int) -> bytes | None:
        raise self._refuse()

    def commit_info(self, name: str, commit: str) -> CommitInfo:
        raise self._refuse()

    def drop(self, name: str) -> None:
        return None
