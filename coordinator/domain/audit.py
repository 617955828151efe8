"""The audit trail (DESIGN §7.12): who changed what, and when.

Every action name lives in `AuditAction`, the one list of them. An event is written by the store
in the same transaction as the change it records (`coordinator.store.audit.record`), so a change
refused or rolled back leaves no event, and no change is without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from coordinator.config import DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT
from coordinator.domain.bounds import check_range

if TYPE_CHECKING:  # ports names AuditEvent: a runtime import would be a cycle
    from coordinator.domain.ports import AuditStore
    from coordinator.domain.runtime import Runtime


class AuditAction(StrEnum):
    """What an audit event records; `target` says what it was done to."""

    APPROVE = "approve"  # target: "build N job J"; detail: the comment
    REJECT = "reject"  # target: "build N job J"; detail: the comment
    ROLLBACK = "rollback"  # target: the environment; detail: the deployment redeployed
    CANCEL = "cancel"  # target: "build N"
    RETRY = "retry"  # target: "build N"; detail: the job, or "unsuccessful jobs"
    SECRET_SET = "secret_set"  # target: the secret's name (never its value)
    SECRET_REMOVE = "secret_remove"  # target: the secret's name
    TOKEN_CREATE = "token_create"  # target: the token's name; detail: its role
    TOKEN_REVOKE = "token_revoke"  # target: the token's name
    AGENT_REVOKE = "agent_revoke"  # target: the agent's name
    AGENT_PAUSE = "agent_pause"  # target: the agent's name
    AGENT_RESUME = "agent_resume"  # target: the agent's name
    AGENT_DRAIN = "agent_drain"  # target: the agent's name
    REPO_ADD = "repo_add"  # target: the repository's name
    REPO_REMOVE = "repo_remove"  # target: the repository's name
    NOTIFY_ADD = "notify_add"  # target: "target N"; detail: its kind, URL and events
    NOTIFY_REMOVE = "notify_remove"  # target: "target N"


AGENT_MODE_ACTIONS = {
    "paused": AuditAction.AGENT_PAUSE,
    "active": AuditAction.AGENT_RESUME,
    "draining": AuditAction.AGENT_DRAIN,
}


@dataclass(frozen=True)
class AuditEvent:
    at_ms: int
    by: str  # the name of the token the change came with
    action: str
    target: str
    detail: str


class AuditTrail:
    def __init__(self, *, runtime: Runtime, store: AuditStore) -> None:
        self._runtime = runtime
        self._store = store

    async def events(self, limit: int = 0) -> list[AuditEvent]:
        """The newest events, newest first; `limit` 0 means the default, and it is capped."""
        check_range("limit", limit, 0, 2**31 - 1)
        limit = min(limit or DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT)
        return await self._runtime.db(self._store.events, limit)
