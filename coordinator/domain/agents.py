"""Agents: joining, long-polling for work, renewing leases, operator modes, the agent list."""

from __future__ import annotations

import builtins
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor import PROTOCOL_VERSION
from coordinator.config import CoordinatorConfig
from coordinator.domain.access import Access
from coordinator.domain.attempts import Attempts
from coordinator.domain.bounds import check_registration
from coordinator.domain.dispatch import Dispatcher, PollResult
from coordinator.domain.errors import ConflictError
from coordinator.domain.leases import LeaseState, LeaseTable
from coordinator.domain.ports import AgentStore
from coordinator.domain.records import AgentRecord
from coordinator.domain.registry import MODES, AgentRegistry, AgentSession, session_hash
from coordinator.domain.runtime import Runtime
from coordinator.policy.scheduling import AgentView

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """A new session: its secret token and the timings the agent must keep."""

    agent: AgentSession
    session_token: str
    lease_ttl_s: float
    renew_interval_s: float
    poll_timeout_s: float


@dataclass(frozen=True)
class AgentStatus:
    record: AgentRecord
    state: str  # online, paused, draining or offline


class Agents:
    def __init__(
        self,
        *,
        config: CoordinatorConfig,
        runtime: Runtime,
        store: AgentStore,
        access: Access,
        registry: AgentRegistry,
        leases: LeaseTable,
        dispatcher: Dispatcher,
        attempts: Attempts,
    ) -> None:
        self._config = config
        self._runtime = runtime
        self._store = store
        self._access = access
        self._registry = registry
        self._leases = leases
        self._dispatcher = dispatcher
        self._attempts = attempts

    async def load(self) -> int:
        """Remembers every stored agent, offline until heard from; returns how many."""
        for agent in await self._runtime.db(self._store.list):
            self._registry.remember(agent, last_seen=0.0)
        return len(self._registry)

    def session(self, token: str | None) -> AgentSession:
        """The agent a session token belongs to (now heard from); AuthError if none."""
        return self._registry.by_session(token)

    async def register(
        self,
        *,
        join_token: str,
        name: str,
        labels: Mapping[str, str],
        capacity: int,
        protocol_version: int,
        running: Sequence[tuple[int, str]],
    ) -> Registration:
        """Opens a session; `running` are the (attempt, token) the agent still runs."""
        self._access.check_join(join_token)
        if protocol_version != PROTOCOL_VERSION:
            raise ConflictError(
                f"agent speaks protocol {protocol_version}, "
                f"coordinator speaks {PROTOCOL_VERSION}: upgrade the older side"
            )
        check_registration(name, labels, capacity, running)
        agent, token = await self._open_session(name, labels, capacity)
        # No wake-up for the others: this agent polls next, and waking every parked agent at each
        # registration would cost N^2 claims while a large farm starts.
        await self._attempts.end_unlisted(agent, running)
        LOGGER.info(
            "agent %s (id %d) registered: labels %s, capacity %d", name, agent.id, labels, capacity
        )
        config = self._config
        return Registration(
            agent, token, config.lease_ttl_s, config.renew_interval_s, config.poll_timeout_s
        )

    async def _open_session(
        self, name: str, labels: Mapping[str, str], capacity: int
    ) -> tuple[AgentSession, str]:
        # The token names the agent's id, known only once the agent is stored: two writes.
        record = await self._runtime.db(
            self._store.register, name=name, labels=labels, capacity=capacity, session_hash=""
        )
        token = f"{record.id}.{secrets.token_urlsafe(24)}"
        record = await self._runtime.db(
            self._store.register,
            name=name,
            labels=labels,
            capacity=capacity,
            session_hash=session_hash(token),
        )
        return self._registry.remember(record, last_seen=time.monotonic()), token

    async def poll(self, agent: AgentSession, free_slots: int, draining: bool) -> PollResult:
        """Waits for work or cancellations; `drain` in the result relays an operator's drain."""

        def slots() -> int:
            if not agent.takes_work:
                return 0
            return min(free_slots, agent.capacity - self._attempts.held_by(agent.id))

        agent.draining = draining
        result = await self._dispatcher.poll(
            agent.id, agent.labels, slots, self._config.poll_timeout_s
        )
        agent.last_seen = time.monotonic()
        result.drain = agent.mode == "draining"
        return result

    def renew(
        self, agent: AgentSession, leases: Sequence[tuple[int, str]]
    ) -> list[tuple[int, LeaseState]]:
        """Extends each (attempt, token) the agent holds; says which to stop or give up."""
        states = []
        for attempt_id, token in leases:
            lease = self._leases.renew(agent.id, attempt_id, token)
            if lease is None:
                states.append((attempt_id, LeaseState.LOST))
            elif lease.cancel_requested:
                states.append((attempt_id, LeaseState.CANCEL))
            else:
                states.append((attempt_id, LeaseState.ACTIVE))
        return states

    async def set_mode(self, name: str, mode: str) -> AgentStatus:
        """An operator's mode for the agent of this name: active, paused or draining."""
        if mode not in MODES:
            raise ValueError(f"unknown agent mode '{mode}' (use {', '.join(MODES)})")
        record = await self._runtime.db(self._store.set_mode, name, mode)
        agent = self._registry.get(record.id)
        if agent is not None:
            agent.mode = mode
            self._dispatcher.nudge(agent.id)
        if mode == "active":
            self._dispatcher.work_available()
        LOGGER.info("agent %s set to %s by an operator", name, mode)
        return AgentStatus(record, self._state(record.id))

    async def list(self) -> list[AgentStatus]:
        records = await self._runtime.db(self._store.list)
        return [AgentStatus(record, self._state(record.id)) for record in records]

    def views(self) -> builtins.list[AgentView]:
        """Every known agent as the scheduling policy sees it right now."""
        return [
            AgentView(
                a.labels,
                a.capacity if a.takes_work else 0,
                self._attempts.held_by(a.id),
                self._registry.online(a.id, polling=self._dispatcher.is_waiting(a.id)),
            )
            for a in self._registry.all()
        ]

    async def persist_last_seen(self) -> None:
        """Stores when each agent was last heard from (for display, and across restarts)."""
        stamps = self._registry.last_seen_ms()
        if stamps:
            await self._runtime.db(self._store.touch, stamps)

    def _state(self, agent_id: int) -> str:
        return self._registry.state(agent_id, polling=self._dispatcher.is_waiting(agent_id))
