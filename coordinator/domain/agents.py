"""Agents: joining, long-polling for work, renewing leases, operator modes, the agent list."""

from __future__ import annotations

import asyncio
import builtins
import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor import PROTOCOL_VERSION
from coordinator.config import (
    MAX_AGENT_CAPACITY,
    MAX_AGENT_CREDENTIAL_CHARS,
    MAX_AGENT_HELD_CHARS,
    MAX_AGENT_LABELS,
    MAX_AGENT_NAME_CHARS,
    MAX_LABEL_KEY_CHARS,
    MAX_LABEL_VALUE_CHARS,
    CoordinatorConfig,
)
from coordinator.domain.access import SERVER_PRINCIPAL, Access, Principal
from coordinator.domain.attempts import Attempts
from coordinator.domain.bounds import check_range
from coordinator.domain.dispatch import Dispatcher, PollResult
from coordinator.domain.errors import AlreadyExistsError, AuthError, ConflictError
from coordinator.domain.leases import LeaseState, LeaseTable
from coordinator.domain.ports import AgentStore
from coordinator.domain.records import AgentRecord
from coordinator.domain.registry import (
    MODES,
    REVOKED,
    AgentRegistry,
    AgentSession,
    session_hash,
)
from coordinator.domain.runtime import Runtime
from coordinator.policy.scheduling import AgentView

LOGGER = logging.getLogger(__name__)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LABEL_KEY = re.compile(r"[A-Za-z0-9._/-]+")
_LABEL_VALUE_REFUSED = re.compile(r"[\x00-\x1f\x7f,=]")


@dataclass(frozen=True)
class Registration:
    """A new session: its secret token and the timings the agent must keep."""

    agent: AgentSession
    session_token: str
    # A credential issued by this registration ("" when the agent presented its own).
    agent_credential: str
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
        # Registrations one at a time: deciding whether a name is free and taking it is one step.
        self._registering = asyncio.Lock()

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
        agent_credential: str = "",
        new_process: bool = False,
    ) -> Registration:
        """Opens a session; `running` are the (attempt, token) the agent still runs.

        A name held by a live agent is refused (AlreadyExistsError) unless the newcomer presents
        that agent's credential: it is then the same agent, restarted. A name whose agent is
        offline and holds no attempt may be taken by a newcomer, which gets a new credential.
        """
        self._access.check_join(join_token)
        if protocol_version != PROTOCOL_VERSION:
            raise ConflictError(
                f"agent speaks protocol {protocol_version}, "
                f"coordinator speaks {PROTOCOL_VERSION}: upgrade the older side"
            )
        check_registration(name, labels, capacity, running, agent_credential)
        async with self._registering:
            agent, token, issued = await self._open_session(
                name, labels, capacity, agent_credential, new_process
            )
        # No wake-up for the others: this agent polls next, and waking every parked agent at each
        # registration would cost N^2 claims while a large farm starts.
        await self._attempts.end_unlisted(agent, running)
        LOGGER.info(
            "agent %s (id %d) registered: labels %s, capacity %d", name, agent.id, labels, capacity
        )
        config = self._config
        return Registration(
            agent,
            token,
            issued,
            config.lease_ttl_s,
            config.renew_interval_s,
            config.poll_timeout_s,
        )

    def _live(self, agent_id: int) -> bool:
        """Heard from lately, or still holding a lease: its name is not free."""
        online = self._registry.online(agent_id, polling=self._dispatcher.is_waiting(agent_id))
        return online or self._attempts.held_by(agent_id) > 0

    async def _open_session(
        self,
        name: str,
        labels: Mapping[str, str],
        capacity: int,
        credential: str,
        new_process: bool,
    ) -> tuple[AgentSession, str, str]:
        existing = await self._runtime.db(self._store.find, name)
        if existing is not None and existing.mode == REVOKED:
            raise AuthError(
                f"agent '{name}' was revoked by an operator: its credential no longer works, "
                "and its name is not taken again"
            )
        issued = ""
        credential_hash: str | None = None
        mode: str | None = None
        if existing is None or not _recognised(existing, credential):
            if existing is not None and self._live(existing.id):
                raise AlreadyExistsError(
                    f"agent name '{name}' is in use by a live agent (#{existing.id}); "
                    "start this one with another --name, or stop that agent first "
                    "(an agent restarted with its own --work-dir is recognised by its credential)"
                )
            if existing is not None:
                LOGGER.warning(
                    "agent name '%s' taken over by a new agent: the previous one is offline",
                    name,
                )
            issued = secrets.token_urlsafe(32)
            credential_hash = session_hash(issued)
        if existing is not None and new_process and existing.mode == "draining":
            # The drain asked the previous process to finish its work and exit; it did (or it
            # died). A new process starts afresh; a pause, which has no end of its own, stays.
            LOGGER.info("agent %s restarted after a drain: active again", name)
            mode = "active"
        if existing is None:
            # The token names the agent's id, known only once the agent is stored: two writes.
            existing = await self._runtime.db(
                self._store.register, name=name, labels=labels, capacity=capacity, session_hash=""
            )
        token = f"{existing.id}.{secrets.token_urlsafe(24)}"
        record = await self._runtime.db(
            self._store.register,
            name=name,
            labels=labels,
            capacity=capacity,
            session_hash=session_hash(token),
            credential_hash=credential_hash,
            mode=mode,
        )
        return self._registry.remember(record, last_seen=time.monotonic()), token, issued

    async def sign_off(self, agent: AgentSession) -> None:
        """The agent exits cleanly: shown offline at once; its session ends."""
        self._registry.sign_off(agent.id)
        self._dispatcher.wake(agent.id)
        LOGGER.info("agent %s (id %d) signed off", agent.name, agent.id)

    async def poll(
        self, agent: AgentSession, free_slots: int, draining: bool, held: str = ""
    ) -> PollResult:
        """Waits for work or cancellations; `drain` in the result relays an operator's drain.

        `held` is the agent's own reason to take no work for now, shown as its state."""
        check_range("free_slots", free_slots, 0, MAX_AGENT_CAPACITY)
        if len(held) > MAX_AGENT_HELD_CHARS:
            raise ValueError(f"held: {len(held)} characters, at most {MAX_AGENT_HELD_CHARS}")

        def slots() -> int:
            if not agent.takes_work:
                return 0
            return min(free_slots, agent.capacity - self._attempts.held_by(agent.id))

        agent.draining = draining
        if held != agent.held:
            LOGGER.info("agent %s: %s", agent.name, held or "takes work again")
            agent.held = held
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
        # An agent holds at most its capacity; a longer list would be answered at length.
        check_range("leases (count)", len(leases), 0, MAX_AGENT_CAPACITY)
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

    async def set_mode(self, name: str, mode: str, by: Principal = SERVER_PRINCIPAL) -> AgentStatus:
        """An operator's mode for the agent of this name: active, paused or draining."""
        if mode not in MODES:
            raise ValueError(f"unknown agent mode '{mode}' (use {', '.join(MODES)})")
        record = await self._runtime.db(self._store.set_mode, name, mode, by.name)
        agent = self._registry.get(record.id)
        if agent is not None:
            agent.mode = mode
            self._dispatcher.nudge(agent.id)
        if mode == "active":
            self._dispatcher.work_available()
        LOGGER.info("agent %s set to %s by %s", name, mode, by.name)
        return AgentStatus(record, self._state(record.id))

    async def revoke(self, name: str, by: Principal) -> AgentStatus:
        """The agent's credential and session stop working at once (its next call is refused,
        and so is any registration under its name); what it runs is lost (`agent_lost`)."""
        record = await self._runtime.db(self._store.revoke, name, by.name)
        self._registry.revoke(record.id)
        self._dispatcher.nudge(record.id)  # a parked poll returns, with nothing
        await self._attempts.end_all_of(record.id, f"agent {name} was revoked by {by.name}")
        LOGGER.warning("agent %s (id %d) revoked by %s", name, record.id, by.name)
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
                a.name,
                _held(a),
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


def _recognised(record: AgentRecord, credential: str) -> bool:
    """The credential presented is this agent's own."""
    if not credential or not record.credential_hash:
        return False
    return hmac.compare_digest(session_hash(credential), record.credential_hash)


def _held(agent: AgentSession) -> str:
    """Why an agent takes no work, in words for a wait reason ("" when it takes work)."""
    if agent.mode == "paused":
        return "paused"
    if agent.mode == "draining" or agent.draining:
        return "draining"
    return agent.held


def check_registration(
    name: str,
    labels: Mapping[str, str],
    capacity: int,
    running: Sequence[tuple[int, str]],
    credential: str,
) -> None:
    """Bounds what an agent says about itself; ValueError naming the field (INVALID_ARGUMENT)."""
    if not name:
        raise ValueError("name: an agent needs a name")
    if len(name) > MAX_AGENT_NAME_CHARS:
        raise ValueError(f"name: {len(name)} characters, at most {MAX_AGENT_NAME_CHARS}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"name: {name!r} may hold only letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if len(labels) > MAX_AGENT_LABELS:
        raise ValueError(f"labels: {len(labels)} labels, at most {MAX_AGENT_LABELS}")
    for key, value in labels.items():
        if len(key) > MAX_LABEL_KEY_CHARS:
            raise ValueError(
                f"labels: a key of {len(key)} characters, at most {MAX_LABEL_KEY_CHARS}"
            )
        if not _LABEL_KEY.fullmatch(key):
            raise ValueError(
                f"labels: key {key!r} may hold only letters, digits, '.', '_', '/' and '-'"
            )
        if len(value) > MAX_LABEL_VALUE_CHARS:
            raise ValueError(
                f"labels.{key}: {len(value)} characters, at most {MAX_LABEL_VALUE_CHARS}"
            )
        if _LABEL_VALUE_REFUSED.search(value):
            raise ValueError(f"labels.{key}: no control characters, ',' or '=' in a value")
    if not 1 <= capacity <= MAX_AGENT_CAPACITY:
        raise ValueError(f"capacity: {capacity}, must be 1 to {MAX_AGENT_CAPACITY}")
    if len(running) > MAX_AGENT_CAPACITY:
        raise ValueError(f"running: {len(running)} leases, at most {MAX_AGENT_CAPACITY}")
    if len(credential) > MAX_AGENT_CREDENTIAL_CHARS:
        raise ValueError(
            f"agent_credential: {len(credential)} characters, at most {MAX_AGENT_CREDENTIAL_CHARS}"
        )
