"""The coordinator's half of the agent protocol, kept in this process for `conveyor exec`:
attempts report to a :class:`Board`, logs go to its listener, artifacts and the source snapshot
are blobs in a temp directory, addressed by their sha256."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import TRANSFER_CHUNK_BYTES
from agent.local.board import Board
from agent.peer import (
    AgentInfo,
    ArtifactFile,
    Inputs,
    Lease,
    LeaseStatus,
    LogAck,
    NeededArtifact,
    PendingAck,
    Recorded,
    Registration,
    StepReport,
    Verdict,
    Work,
)


class Blobs:
    """Content-addressed files under `root`."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        hasher, size = hashlib.sha256(), 0
        partial = self._root / f"partial-{threading.get_ident()}"
        with partial.open("wb") as out:
            for data in chunks:
                hasher.update(data)
                size += len(data)
                out.write(data)
        digest = hasher.hexdigest()
        os.replace(partial, self._root / digest)
        return digest, size

    def read(self, sha256: str) -> Generator[bytes, None, None]:
        with (self._root / sha256).open("rb") as handle:
            while data := handle.read(TRANSFER_CHUNK_BYTES):
                yield data


@dataclass
class LocalAttempt:
    """What the local coordinator knows of one attempt it handed out."""

    job: str
    inputs: Inputs
    produced: list[NeededArtifact] = field(default_factory=list)
    held: dict[int, int] = field(default_factory=dict)  # step index -> log bytes held
    recorded: Recorded | None = None


class LocalPeer:
    """A :class:`agent.peer.Peer` for attempts started in this process (no agent loop: those
    calls are not made)."""

    def __init__(self, board: Board, blobs: Blobs) -> None:
        self._board = board
        self.blobs = blobs
        self._attempts: dict[int, LocalAttempt] = {}
        self._lock = threading.Lock()
        self.cancel = threading.Event()

    def open(self, lease: Lease, job: str, inputs: Inputs) -> LocalAttempt:
        attempt = LocalAttempt(job, inputs)
        with self._lock:
            self._attempts[lease.attempt_id] = attempt
        return attempt

    def _of(self, lease: Lease) -> LocalAttempt:
        with self._lock:
            return self._attempts[lease.attempt_id]

    def register(
        self,
        agent: AgentInfo,
        running: Callable[[], Sequence[Lease]],
        *,
        give_up: threading.Event | None = None,
        keep_credential: Callable[[str], None] | None = None,
    ) -> Registration:
        raise NotImplementedError("exec runs attempts directly, without registering")

    def sign_off(self) -> None:
        pass

    def poll(
        self, *, free_slots: int, draining: bool, stop: threading.Event, held: str = ""
    ) -> Work | None:
        raise NotImplementedError("exec hands out attempts directly, without polls")

    def renew_leases(self, leases: Sequence[Lease], *, timeout_s: float) -> list[LeaseStatus]:
        raise NotImplementedError("exec's leases do not expire")

    def start_step(self, lease: Lease, index: int, *, give_up: threading.Event) -> bool:
        self._board.start_step(self._of(lease).job, index)
        return self.cancel.is_set()

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        attempt = self._of(lease)
        held = attempt.held.get(index, 0)
        if offset > held:
            return LogAck(held, accepted=False)
        new = data[held - offset :]
        if new:
            self._board.log(attempt.job, index, held, new)
            held += len(new)
            attempt.held[index] = held
        return LogAck(held, accepted=True)

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        ack = self.append_log(lease, index, offset, data, give_up=give_up)
        return lambda: ack

    def finish_step(self, lease: Lease, report: StepReport, *, give_up: threading.Event) -> None:
        attempt = self._of(lease)
        self._board.finish_step(
            attempt.job,
            report.index,
            report.verdict.outcome,
            report.exit_code,
            report.log_lost_bytes,
        )

    def finish_attempt(
        self,
        lease: Lease,
        verdict: Verdict,
        *,
        give_up: threading.Event,
        last_step: StepReport | None = None,
    ) -> Recorded:
        attempt = self._of(lease)
        if attempt.recorded is None and last_step is not None:
            self.finish_step(lease, last_step, give_up=give_up)
        if attempt.recorded is None:
            attempt.recorded = Recorded(verdict.outcome, verdict.reason)
            self._board.finish_attempt(
                attempt.job, verdict.outcome, verdict.reason, verdict.message, verdict.exit_code
            )
        return attempt.recorded

    def get_inputs(self, lease: Lease) -> Inputs:
        return self._of(lease).inputs

    def report_source(self, lease: Lease, commit: str, committed_at_ms: int) -> None:
        pass

    def download(self, lease: Lease, sha256: str) -> Generator[bytes, None, None]:
        return self.blobs.read(sha256)

    def upload_artifact(
        self,
        lease: Lease,
        artifact: ArtifactFile,
        open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
        *,
        give_up: threading.Event,
    ) -> None:
        attempt = self._of(lease)
        with open_chunks() as chunks:
            digest, size = self.blobs.put(chunks)
        kept = NeededArtifact(attempt.job, artifact.name, size, digest, artifact.mode)
        with self._lock:
            attempt.produced.append(kept)

    def close(self) -> None:
        pass


__all__ = ["Blobs", "LocalAttempt", "LocalPeer"]
