"""Leases of running attempts, kept in memory on the monotonic clock.

The database says which attempts run; this table says until when each agent holds them. After a
coordinator restart every running attempt gets a fresh TTL, so agents have time to re-present.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from coordinator.domain.errors import FencedError
from coordinator.domain.records import LiveAttempt


class LeaseState(StrEnum):
    """What a renewal tells the agent about one of its attempts."""

    ACTIVE = "active"
    CANCEL = "cancel"  # keep renewing, but stop the attempt: its build was canceled
    LOST = "lost"  # no longer the caller's: stop at once, report nothing more


@dataclass
class Lease:
    attempt_id: int
    agent_id: int
    build_id: int
    token: str
    deadline: float
    cancel_requested: bool = False
    # When the lease was last granted or renewed (the table's clock): what an expiry reports.
    renewed_at: float = 0.0
    step_count: int | None = None  # None: unknown, the store alone checks step indexes
    # When this coordinator granted it (the table's clock): how long the attempt has run here.
    granted_at: float = 0.0


class LeaseTable:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._leases: dict[int, Lease] = {}
        # The same leases by agent: every poll asks for its agent's, and a scan of all leases
        # there would make each poll cost as much as the farm is large.
        self._by_agent: dict[int, dict[int, Lease]] = {}

    def held_for(self, lease: Lease) -> float:
        """Seconds since `lease` was granted."""
        return self._clock() - lease.granted_at

    def add(self, attempt: LiveAttempt) -> None:
        self.remove(attempt.attempt_id)
        now = self._clock()
        lease = Lease(
            attempt.attempt_id,
            attempt.agent_id,
            attempt.build_id,
            attempt.lease_token,
            now + self._ttl_s,
            attempt.cancel_requested,
            renewed_at=now,
            granted_at=now,
            step_count=attempt.step_count,
        )
        self._leases[lease.attempt_id] = lease
        self._by_agent.setdefault(lease.agent_id, {})[lease.attempt_id] = lease

    def check(self, agent_id: int, attempt_id: int, token: str) -> Lease:
        """The live lease for this call, or FencedError when the caller no longer holds it."""
        lease = self._leases.get(attempt_id)
        if lease is None or lease.agent_id != agent_id or lease.token != token:
            raise FencedError(f"attempt {attempt_id} is not held by this agent")
        return lease

    def renew(self, agent_id: int, attempt_id: int, token: str) -> Lease | None:
        try:
            lease = self.check(agent_id, attempt_id, token)
        except FencedError:
            return None
        lease.renewed_at = self._clock()
        lease.deadline = lease.renewed_at + self._ttl_s
        return lease

    def remove(self, attempt_id: int) -> None:
        lease = self._leases.pop(attempt_id, None)
        if lease is None:
            return
        held = self._by_agent.get(lease.agent_id, {})
        held.pop(attempt_id, None)
        if not held:
            self._by_agent.pop(lease.agent_id, None)

    def mark_cancel(self, attempt_id: int) -> Lease | None:
        lease = self._leases.get(attempt_id)
        if lease is not None:
            lease.cancel_requested = True
        return lease

    def expired(self) -> list[Lease]:
        now = self._clock()
        return [lease for lease in self._leases.values() if lease.deadline <= now]

    def is_due(self, lease: Lease) -> bool:
        """Whether `lease` is still the attempt's and past its deadline (not renewed, not ended)."""
        return self._leases.get(lease.attempt_id) is lease and lease.deadline <= self._clock()

    def silent_for(self, lease: Lease) -> float:
        """Seconds since the lease was last granted or renewed."""
        return self._clock() - lease.renewed_at

    def of_agent(self, agent_id: int) -> Iterable[Lease]:
        return list(self._by_agent.get(agent_id, {}).values())

    def __len__(self) -> int:
        return len(self._leases)

    def check_any(self, attempt_id: int) -> Lease | None:
        return self._leases.get(attempt_id)
