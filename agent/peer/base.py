"""The agent's one interface to the coordinator, in domain terms: :class:`Peer`.

The attempt runner, the lease keeper, the log shipper and the transfers code against it; the
gRPC implementation (:mod:`agent.peer.grpc`) is the only place that knows protobuf, status
codes and the retry policy. Tests can put any object with these methods in its place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from agent.peer.types import (
    AgentInfo,
    ArtifactFile,
    Inputs,
    Lease,
    LeaseStatus,
    LogAck,
    PendingAck,
    Recorded,
    Registration,
    StepReport,
    Verdict,
    Work,
)


class PeerError(Exception):
    """A call to the coordinator failed, after any retries it was worth.

    ``str()`` is a one-line account for logs ("UNAVAILABLE: ..."); ``detail`` is the
    coordinator's own words for messages users see. ``transient`` says the failure was an
    outage (retried until the call's budget or interrupt ended it), not a refusal.
    """

    def __init__(self, detail: str, *, code: str, transient: bool) -> None:
        super().__init__(f"{code}: {detail}")
        self.detail = detail
        self.code = code
        self.transient = transient


class FencedError(Exception):
    """The coordinator says this attempt is no longer ours: stop it, report nothing more."""


class JoinRefusedError(Exception):
    """The coordinator refused this agent (join token, protocol version, a name taken over):
    retrying won't help."""


class UntrustedServerError(JoinRefusedError):
    """The coordinator's TLS certificate did not verify (or it spoke no TLS): the message says
    how. Trying again would meet the same certificate."""


class Peer(Protocol):
    """The coordinator as one agent sees it.

    Every method blocks the calling thread and may be called from several threads at once.
    Calls about an attempt take its :class:`Lease` and raise :class:`FencedError` when the
    attempt is no longer this agent's. Failures are :class:`PeerError` unless said otherwise;
    ``give_up`` (where taken) ends the retries of an outage: the call then raises the last
    failure. A session the coordinator forgot (it restarted) is re-registered transparently.
    """

    def register(
        self,
        agent: AgentInfo,
        running: Callable[[], Sequence[Lease]],
        *,
        give_up: threading.Event | None = None,
        keep_credential: Callable[[str], None] | None = None,
    ) -> Registration:
        """Joins the farm as a new process, retrying an outage until ``give_up`` is set.

        ``running`` is asked for the leases this agent still holds each time the peer
        (re-)registers, so that they are re-presented, not lost. ``keep_credential`` is called
        with each credential the coordinator issues (at the first registration of a name, also
        on a transparent re-registration), before the registration is used; later
        registrations present it. Raises :class:`JoinRefusedError` for a wrong token or
        protocol version, or a name a live agent holds.
        """
        ...

    def sign_off(self) -> None:
        """Tells the coordinator this agent exits cleanly (shown offline at once). One short
        try; a failure is logged, not raised."""
        ...

    def poll(
        self, *, free_slots: int, draining: bool, stop: threading.Event, held: str = ""
    ) -> Work | None:
        """Long-polls for work: returns as soon as there is some, or empty after the
        coordinator's poll timeout; returns None within a fraction of a second once ``stop``
        is set. An outage is retried until then. ``held`` says why the agent takes no work
        for now ("disk full: DIR"; "" when it takes work), shown as its state."""
        ...

    def renew_leases(self, leases: Sequence[Lease], *, timeout_s: float) -> list[LeaseStatus]:
        """Renews leases in one try of at most ``timeout_s`` (the next renewal is the retry)."""
        ...

    def start_step(self, lease: Lease, index: int, *, give_up: threading.Event) -> bool:
        """Records that step ``index`` starts; True when a cancel of the attempt was asked."""
        ...

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        """Appends ``data`` at byte ``offset`` of step ``index``'s log; the answer says how
        much the coordinator holds durably (a resent chunk is not duplicated)."""
        ...

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        """Sends the chunk as :meth:`append_log` does, but returns at once: what it returns
        waits for the answer (or raises the send's failure), so the next chunk can go while
        the coordinator stores this one. Chunks of one step are stored in the order sent. It
        does not retry: after a failure, resend with :meth:`append_log`."""
        ...

    def finish_step(self, lease: Lease, report: StepReport, *, give_up: threading.Event) -> None:
        """Records how step ``report.index`` ended."""
        ...

    def finish_attempt(
        self,
        lease: Lease,
        verdict: Verdict,
        *,
        give_up: threading.Event,
        last_step: StepReport | None = None,
    ) -> Recorded:
        """Records the attempt's result once; a repeat returns the stored result. With
        ``last_step`` (the step that ran last, not yet reported), records its end first: in the
        same call where the coordinator takes it so."""
        ...

    def get_inputs(self, lease: Lease) -> Inputs:
        """The attempt's source, needed artifacts and artifact globs."""
        ...

    def report_source(self, lease: Lease, commit: str, committed_at_ms: int) -> None:
        """Tells which commit the attempt's git ref resolved to, and that commit's time."""
        ...

    def download(self, lease: Lease, sha256: str) -> Generator[bytes, None, None]:
        """Streams the blob ``sha256`` in chunks, unchecked (the caller verifies the digest).

        Not retried. Closing the generator early cancels the transfer; a failure mid-stream
        raises from it.
        """
        ...

    def upload_artifact(
        self,
        lease: Lease,
        artifact: ArtifactFile,
        open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
        *,
        give_up: threading.Event,
    ) -> None:
        """Streams one artifact up, reading the chunks ``open_chunks`` opens on the calling
        thread.

        An upload cut by an outage or a coordinator restart is tried again from its start, with
        freshly opened chunks, until ``give_up`` is set or a bounded number of tries failed
        (uploads are idempotent: the coordinator keeps an identical resend once). An exception
        raised by the chunks cancels the upload and propagates; a refusal (a size limit...) or
        the last failed try is a :class:`PeerError`.
        """
        ...

    def close(self) -> None:
        """Ends every retry at once and closes the connections; idempotent."""
        ...
