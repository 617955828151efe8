"""An in-memory :class:`agent.peer.Peer`: records what the agent reports, refuses on request.

mypy checks it against the Protocol (see `as_peer`), so it cannot drift from the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from agent.peer import (
    AgentInfo,
    ArtifactFile,
    FencedError,
    Inputs,
    Lease,
    LeaseState,
    LeaseStatus,
    LogAck,
    Peer,
    PendingAck,
    Recorded,
    Registration,
    StepReport,
    Verdict,
    Work,
)


@dataclass
class MemoryPeer:
    inputs: Inputs = field(default_factory=Inputs)
    work: list[Work] = field(default_factory=list)
    # Calls (by method name) answered with FencedError: the attempt is no longer ours.
    fenced: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    logs: dict[int, bytearray] = field(default_factory=dict)
    steps: list[StepReport] = field(default_factory=list)
    finished: list[Verdict] = field(default_factory=list)
    cancel_on_start: bool = False

    def _record(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fenced:
            raise FencedError(f"{name}: attempt is no longer this agent's")

    def register(
        self,
        agent: AgentInfo,
        running: Callable[[], Sequence[Lease]],
        *,
        give_up: threading.Event | None = None,
        keep_credential: Callable[[str], None] | None = None,
    ) -> Registration:
        self._record("register")
        return Registration(agent_id=1, lease_ttl_s=4.0, renew_interval_s=1.0)

    def sign_off(self) -> None:
        self._record("sign_off")

    def poll(
        self, *, free_slots: int, draining: bool, stop: threading.Event, held: str = ""
    ) -> Work | None:
        self._record("poll")
        return self.work.pop(0) if self.work else Work()

    def renew_leases(self, leases: Sequence[Lease], *, timeout_s: float) -> list[LeaseStatus]:
        self._record("renew_leases")
        return [LeaseStatus(lease.attempt_id, LeaseState.ACTIVE) for lease in leases]

    def start_step(self, lease: Lease, index: int, *, give_up: threading.Event) -> bool:
        self._record("start_step")
        return self.cancel_on_start

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        self._record("append_log")
        held = self.logs.setdefault(index, bytearray())
        if offset <= len(held):
            held += data[len(held) - offset :]
        return LogAck(len(held), accepted=offset <= len(held))

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        ack = self.append_log(lease, index, offset, data, give_up=give_up)
        return lambda: ack

    def finish_step(self, lease: Lease, report: StepReport, *, give_up: threading.Event) -> None:
        self._record("finish_step")
        self.steps.append(report)

    def finish_attempt(
        self,
        lease: Lease,
        verdict: Verdict,
        *,
        give_up: threading.Event,
        last_step: StepReport | None = None,
    ) -> Recorded:
        self._record("finish_attempt")
        if last_step is not None:
            self.steps.append(last_step)
        self.finished.append(verdict)
        first = self.finished[0]
        return Recorded(first.outcome, first.reason)

    def get_inputs(self, lease: Lease) -> Inputs:
        self._record("get_inputs")
        return self.inputs

    def report_source(self, lease: Lease, commit: str, committed_at_ms: int) -> None:
        self._record("report_source")

    def download(self, lease: Lease, sha256: str) -> Generator[bytes, None, None]:
        self._record("download")
        yield from ()

    def upload_artifact(
        self,
        lease: Lease,
        artifact: ArtifactFile,
        open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
        *,
        give_up: threading.Event,
    ) -> None:
        self._record("upload_artifact")
        with open_chunks() as chunks:
            b"".join(chunks)

    def close(self) -> None:
        self.calls.append("close")


def as_peer(peer: MemoryPeer) -> Peer:
    """Where mypy proves the fake implements every Peer method with the same signature."""
    return peer
