"""`conveyor repo add | list | remove`: repositories the coordinator watches (DESIGN §4.2).

Adding one reads its current heads at once (an unreachable URL is refused, nothing stored) and
records them without building them: only what is pushed afterwards is built. The webhook secret is
sealed with the coordinator's key before the store sees it and is never handed back.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath

from coordinator.config import (
    DEFAULT_REPO_PIPELINE,
    DEFAULT_REPO_POLL_S,
    MAX_REPO_HEADS,
    MAX_REPO_NAME_CHARS,
    MAX_REPO_PIPELINE_PATH_CHARS,
    MAX_REPO_POLL_S,
    MAX_REPO_URL_CHARS,
    MAX_WEBHOOK_SECRET_BYTES,
    MIN_REPO_POLL_S,
    MIN_WEBHOOK_SECRET_BYTES,
)
from coordinator.domain.access import MANAGE, Principal, check_role
from coordinator.domain.errors import GitError
from coordinator.domain.ports import SecretSealer
from coordinator.domain.repo_ports import GitRemote, RepoStore
from coordinator.domain.repo_records import RepoRecord
from coordinator.domain.runtime import Runtime

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Transports git speaks to a server; `ext::` and `fd::` (which run commands) are not among them.
_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/].*|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.*")
SEAL_SCOPE = "webhook"
"""What a repository's webhook secret is sealed bound to, with `repo:NAME`."""


def seal_name(repo: str) -> str:
    return f"repo:{repo}"


def check_name(name: str) -> None:
    if len(name) > MAX_REPO_NAME_CHARS or not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid repository name {name[:80]!r}: letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit, at most {MAX_REPO_NAME_CHARS} characters"
        )


def check_url(url: str) -> None:
    if not url or len(url) > MAX_REPO_URL_CHARS:
        raise ValueError(f"the URL must be 1 to {MAX_REPO_URL_CHARS} characters")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise ValueError("the URL contains whitespace or control characters")
    if url.startswith(_SCHEMES) or url.startswith("/") or _SCP_LIKE.fullmatch(url):
        return
    raise ValueError(
        f"unsupported repository URL {url[:80]!r}: use https://, http://, ssh://, git://, "
        "file://, user@host:path or an absolute path"
    )


def check_pipeline_path(path: str) -> None:
    parts = PurePosixPath(path).parts
    if (
        not path
        or len(path) > MAX_REPO_PIPELINE_PATH_CHARS
        or path.startswith("/")
        or "\\" in path
        or ".." in parts
        or any(ord(char) < 32 for char in path)
        or path.endswith("/")
    ):
        raise ValueError(
            f"invalid pipeline path {path[:80]!r}: a file's path relative to the repository's "
            "root, without '..'"
        )


def check_poll(poll_s: float) -> None:
    if not MIN_REPO_POLL_S <= poll_s <= MAX_REPO_POLL_S:
        raise ValueError(
            f"poll interval {poll_s:g} s is out of range ({MIN_REPO_POLL_S:g} s to "
            f"{MAX_REPO_POLL_S:g} s)"
        )


def check_secret(secret: str) -> None:
    size = len(secret.encode(errors="replace"))
    if "\0" in secret or not MIN_WEBHOOK_SECRET_BYTES <= size <= MAX_WEBHOOK_SECRET_BYTES:
        raise ValueError(
            f"the webhook secret must be {MIN_WEBHOOK_SECRET_BYTES} to "
            f"{MAX_WEBHOOK_SECRET_BYTES} bytes of text"
        )


def check_repo(name: str, url: str, pipeline_path: str, poll_s: float, secret: str) -> None:
    """ValueError naming the first of a new repository's settings that is not acceptable."""
    check_name(name)
    check_url(url)
    check_pipeline_path(pipeline_path)
    check_poll(poll_s)
    if secret:
        check_secret(secret)


def now_ms() -> int:
    return int(time.time() * 1000)


class Repos:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: RepoStore,
        git: GitRemote,
        sealer: SecretSealer,
        prepare: Callable[[RepoRecord], Awaitable[RepoRecord]] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        """`prepare` completes a new repository's record before it is stored (its schedules)."""
        self._prepare = prepare
        self._runtime = runtime
        self._store = store
        self._git = git
        self._sealer = sealer
        self._clock = clock

    async def add(
        self,
        principal: Principal,
        name: str,
        url: str,
        *,
        pipeline_path: str = "",
        poll_s: float = 0.0,
        webhook_secret: str = "",
    ) -> RepoRecord:
        check_role(principal, MANAGE, "add repositories")
        pipeline_path = pipeline_path or DEFAULT_REPO_PIPELINE
        poll_s = poll_s or DEFAULT_REPO_POLL_S
        check_repo(name, url, pipeline_path, poll_s, webhook_secret)
        sealed = None
        if webhook_secret:
            sealed = await self._runtime.io(
                self._sealer.seal, seal_name(name), SEAL_SCOPE, webhook_secret
            )
        try:
            heads = await self._runtime.git(self._git.heads, url)
        except GitError as error:
            raise GitError(f"cannot read the repository at {url}: {error}") from None
        if len(heads) > MAX_REPO_HEADS:
            raise ValueError(f"the repository has too many refs ({len(heads)} > {MAX_REPO_HEADS})")
        now = self._clock()
        record = RepoRecord(
            name=name,
            url=url,
            pipeline_path=pipeline_path,
            poll_s=poll_s,
            sealed_secret=sealed,
            heads=heads,
            last_check_ms=now,
            last_error="",
            failures=0,
            next_check_ms=now + int(poll_s * 1000),
            created_at_ms=now,
            created_by=principal.name,
        )
        if self._prepare is not None:
            record = await self._prepare(record)
        return await self._runtime.db(self._store.add, record)

    async def remove(self, principal: Principal, name: str) -> RepoRecord:
        check_role(principal, MANAGE, "remove repositories")
        check_name(name)
        record = await self._runtime.db(self._store.remove, name, principal.name)
        await self._runtime.git(self._git.drop, name)
        return record

    async def list(self, principal: Principal) -> builtins.list[RepoRecord]:
        # Admin only, like adding: a URL may carry a token (https://TOKEN@host/...).
        check_role(principal, MANAGE, "list repositories")
        return await self._runtime.db(self._store.list)

    async def get(self, name: str) -> RepoRecord:
        check_name(name)
        return await self._runtime.db(self._store.get, name)

    def open_secret(self, repo: RepoRecord) -> str | None:
        """The repository's webhook secret in clear; None when it has none."""
        if repo.sealed_secret is None:
            return None
        return self._sealer.open(seal_name(repo.name), SEAL_SCOPE, repo.sealed_secret)
