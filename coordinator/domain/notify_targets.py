"""`conveyor notify add | list | remove`: where outgoing events go (DESIGN §4.2, §8).

A target is a webhook (the event's JSON, signed with its secret when it has one) or a forge's
commit statuses (Gitea's and GitHub's statuses API, with a token). The secret or token is sealed
here before the store sees it, and never given back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from coordinator.config import MAX_NOTIFY_SECRET_CHARS, MAX_NOTIFY_URL_CHARS, MAX_ROW_ID
from coordinator.domain.access import MANAGE, Principal, check_role
from coordinator.domain.bounds import check_range
from coordinator.domain.notify_records import NewTarget, NotifyEvent, TargetKind, TargetRecord
from coordinator.domain.ports import NotificationStore, SecretSealer
from coordinator.domain.runtime import Runtime

SEAL_NAME = "notify-target"
"""The name a target's secret or token is sealed under (its scope is the target's URL)."""
COMMIT_STATUS_EVENTS = (NotifyEvent.BUILD, NotifyEvent.GATE)
"""What a commit status can show: a build's result, or that it waits at a gate (pending)."""
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def check_url(url: str, what: str = "URL") -> None:
    """ValueError unless `url` is an absolute http or https URL with a host."""
    if len(url) > MAX_NOTIFY_URL_CHARS:
        raise ValueError(f"the {what} is too long ({len(url)} > {MAX_NOTIFY_URL_CHARS} characters)")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError(f"the {what} {url[:80]!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError as error:
        raise ValueError(f"the {what} {url[:80]!r} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the {what} {url[:80]!r} is not an http:// or https:// URL with a host")


def check_events(names: Sequence[str], kind: TargetKind) -> tuple[NotifyEvent, ...]:
    """The events named, in the canonical order; every event a kind can show if none."""
    allowed = COMMIT_STATUS_EVENTS if kind is TargetKind.COMMIT_STATUS else tuple(NotifyEvent)
    if not names:
        return allowed
    unknown = [name for name in names if name not in {e.value for e in allowed}]
    if unknown:
        raise ValueError(
            f"unknown event {unknown[0][:40]!r} for a {kind.value.replace('_', ' ')} target "
            f"(choose from {', '.join(e.value for e in allowed)})"
        )
    return tuple(event for event in allowed if event.value in names)


def check_secret(secret: str, what: str) -> None:
    if not secret:
        raise ValueError(f"the {what} is empty")
    if len(secret) > MAX_NOTIFY_SECRET_CHARS:
        raise ValueError(f"the {what} is too long (more than {MAX_NOTIFY_SECRET_CHARS} characters)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in secret):
        raise ValueError(f"the {what} contains control characters")


def check_target(
    kind: TargetKind, url: str, repo: str, events: Sequence[str], secret: str, link: str
) -> tuple[NotifyEvent, ...]:
    """ValueError naming what is wrong with a target as given; its events if nothing is."""
    check_url(url, "URL" if kind is TargetKind.WEBHOOK else "API base URL")
    if kind is TargetKind.COMMIT_STATUS:
        if not _REPO.fullmatch(repo):
            raise ValueError(f"the repository {repo[:80]!r} is not OWNER/REPO")
        check_secret(secret, "forge token")
    else:
        if repo:
            raise ValueError("a webhook target names no repository (that is a commit status's)")
        if secret:
            check_secret(secret, "secret")
    if link:
        check_url(link, "build link URL")
    return check_events(events, kind)


class NotifyTargets:
    """`conveyor notify add | list | remove` (admin)."""

    def __init__(self, *, runtime: Runtime, store: NotificationStore, sealer: SecretSealer) -> None:
        self._runtime = runtime
        self._store = store
        self._sealer = sealer

    async def add(
        self,
        principal: Principal,
        kind: TargetKind,
        url: str,
        *,
        repo: str = "",
        events: Sequence[str] = (),
        secret: str = "",
        link: str = "",
    ) -> TargetRecord:
        check_role(principal, MANAGE, "manage notification targets")
        chosen = check_target(kind, url, repo, events, secret, link)
        sealed = None
        if secret:
            sealed = await self._runtime.io(self._sealer.seal, SEAL_NAME, url, secret)
        target = NewTarget(kind, url, repo, chosen, sealed, link)
        return await self._runtime.db(self._store.add, target, by=principal.name)

    async def remove(self, principal: Principal, target_id: int) -> TargetRecord:
        check_role(principal, MANAGE, "manage notification targets")
        check_range("target id", target_id, 1, MAX_ROW_ID)
        return await self._runtime.db(self._store.remove, target_id, by=principal.name)

    async def list(self, principal: Principal) -> list[TargetRecord]:
        # Admin only as well: a target's URL may carry a receiver's own credentials.
        check_role(principal, MANAGE, "list notification targets")
        return await self._runtime.db(self._store.targets)
