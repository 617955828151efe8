"""Agents as the coordinator sees them in memory: sessions, liveness, operator modes.

Rebuilt from the store at start (every agent offline until heard from); `last_seen` is on the
monotonic clock and goes to the store as wall-clock time for display only.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from coordinator.domain.errors import AuthError
from coordinator.domain.records import AgentRecord

MODES = ("active", "paused", "draining")
# Not a mode an operator sets and lifts: `conveyor agents revoke` ends the agent for good.
REVOKED = "revoked"
SESSION_REPLACED = "session replaced"
MAX_REPLACED_SESSIONS = 1000


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class AgentSession:
    id: int
    name: str
    labels: dict[str, str]
    capacity: int
    session_hash: str
    last_seen: float  # monotonic; 0 when not heard from since the coordinator started
    mode: str = "active"  # set by an operator
    draining: bool = False  # reported by the agent itself (e.g. after its first SIGTERM)
    # One of its leases expired: a poll it left parked may no longer reach it, so it gets no
    # work until it is heard from again.
    silent: bool = False
    # Why the agent itself takes no work for now ("disk full: DIR"); "" when it does.
    held: str = ""

    @property
    def takes_work(self) -> bool:
        return self.mode == "active" and not self.draining and not self.silent and not self.held


class AgentRegistry:
    def __init__(self, offline_after_s: float) -> None:
        self._offline_after_s = offline_after_s
        self._agents: dict[int, AgentSession] = {}
        self._sessions: dict[str, int] = {}
        # Sessions taken over by a later registration under the same name, to tell their
        # holder why it was cut off (bounded: only the most recent are kept).
        self._replaced: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._agents)

    def all(self) -> list[AgentSession]:
        return list(self._agents.values())

    def get(self, agent_id: int) -> AgentSession | None:
        return self._agents.get(agent_id)

    def remember(self, record: AgentRecord, last_seen: float) -> AgentSession:
        previous = self._agents.get(record.id)
        if previous is not None:
            self._sessions.pop(previous.session_hash, None)
            if previous.session_hash and previous.session_hash != record.session_hash:
                self._replaced[previous.session_hash] = record.name
                while len(self._replaced) > MAX_REPLACED_SESSIONS:
                    del self._replaced[next(iter(self._replaced))]
        agent = AgentSession(
            record.id,
            record.name,
            dict(record.labels),
            record.capacity,
            record.session_hash,
            last_seen,
            record.mode,
        )
        self._agents[record.id] = agent
        if record.session_hash:
            self._sessions[record.session_hash] = record.id
        return agent

    def by_session(self, token: str | None) -> AgentSession:
        hashed = session_hash(token) if token else ""
        agent_id = self._sessions.get(hashed)
        if agent_id is None:
            if hashed in self._replaced:
                raise AuthError(
                    f"{SESSION_REPLACED}: another agent registered as '{self._replaced[hashed]}'"
                    " (agent names must be unique)"
                )
            raise AuthError("missing or unknown agent session; register again")
        agent = self._agents[agent_id]
        agent.last_seen = time.monotonic()
        agent.silent = False
        return agent

    def sign_off(self, agent_id: int) -> None:
        """The agent exited cleanly: offline at once, its session over."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        self._sessions.pop(agent.session_hash, None)
        agent.last_seen = 0.0
        agent.silent = True  # a poll still parked gets no work for it

    def revoke(self, agent_id: int) -> None:
        """The agent's session stops working now; it is never online again."""
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        self._sessions.pop(agent.session_hash, None)
        agent.session_hash = ""
        agent.mode = REVOKED
        agent.last_seen = 0.0

    def lost_lease(self, agent_id: int) -> str:
        """One of the agent's leases expired; returns its name for messages.

        Until heard from again it gets no work: a poll it left parked may no longer reach it.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            return f"#{agent_id}"
        agent.silent = True
        return agent.name

    def online(self, agent_id: int, *, polling: bool) -> bool:
        agent = self._agents.get(agent_id)
        if agent is None or agent.last_seen == 0.0:
            return False
        return polling or time.monotonic() - agent.last_seen < self._offline_after_s

    def state(self, agent_id: int, *, polling: bool) -> str:
        agent = self._agents.get(agent_id)
        if agent is not None and agent.mode == REVOKED:
            return REVOKED
        if agent is None or not self.online(agent_id, polling=polling):
            return "offline"
        if agent.mode == "draining" or agent.draining:
            return "draining"
        if agent.mode == "paused":
            return "paused"
        return agent.held or "online"

    def last_seen_ms(self) -> dict[int, int]:
        """Wall-clock stamps of when each agent was last heard from, for display."""
        now_mono, now_wall = time.monotonic(), int(time.time() * 1000)
        return {
            a.id: now_wall - int((now_mono - a.last_seen) * 1000)
            for a in self._agents.values()
            if a.last_seen
        }
