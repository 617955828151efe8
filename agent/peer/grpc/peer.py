""":class:`~agent.peer.base.Peer` over gRPC: the session, the one retry policy, the stubs.

Every unary call goes through :meth:`GrpcPeer._call`: transient failures are retried with
exponential backoff and jitter within a budget; a session the coordinator forgot is registered
again once; the rest is mapped by :mod:`.errors`. Blob streams use a second connection so bulk
bytes never delay leases or logs.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

import grpc
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_when_event_set,
    wait_exponential_jitter,
)

from agent.config import (
    CALL_RETRY_BUDGET_S,
    CALL_TIMEOUT_S,
    RETRY_INITIAL_S,
    RETRY_MAX_S,
    UPLOAD_TRIES,
)
from agent.peer.base import PeerError, UntrustedServerError
from agent.peer.grpc import blobs, convert
from agent.peer.grpc.errors import (
    CallFailed,
    describe,
    details_of,
    forgot_session,
    is_retryable,
    to_join_error,
    to_peer_error,
)
from agent.peer.grpc.stream import SessionStream
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
from conveyor import PROTOCOL_VERSION, wire
from conveyor.tls import TrustedCa, handshake_problem
from conveyor.v1 import agent_pb2, agent_pb2_grpc, blobs_pb2, blobs_pb2_grpc

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# How often a blocked long-poll looks at its stop flag.
STOP_CHECK_S = 0.1
# A clean exit's goodbye is not worth waiting for long.
SIGN_OFF_TIMEOUT_S = 3.0
# Until the first registration says otherwise.
DEFAULT_POLL_TIMEOUT_S = 30.0
_FOREVER = float("inf")


def _log_retry(state: RetryCallState) -> None:
    if state.outcome is not None:
        LOGGER.warning(
            "coordinator call failed (%s); retrying", describe(state.outcome.exception())
        )


class GrpcPeer:
    """The coordinator at `address`, joined with `join_token`."""

    def __init__(self, address: str, join_token: str, ca: TrustedCa | None = None) -> None:
        """TLS verified against `ca`, or plaintext without one."""
        self._address = address
        self._join_token = join_token
        self._ca = ca
        self._closed = threading.Event()
        self._channel = wire.channel(address, ca.pem if ca else None)
        self._stub = agent_pb2_grpc.AgentServiceStub(self._channel)
        self._stream = SessionStream(self._stub)
        # Set when the coordinator has no session stream (an older one): unary calls from then.
        self._unary_only = False
        stub = self._stub
        self._renew_leases = self._event("renew_leases", stub.RenewLeases)
        self._start_step = self._event("start_step", stub.StartStep)
        self._append_log = self._event("append_log", stub.AppendLog)
        self._finish_step = self._event("finish_step", stub.FinishStep)
        self._finish_attempt = self._event("finish_attempt", stub.FinishAttempt)
        self._transfer_channel: grpc.Channel | None = None
        self._blob_stub: blobs_pb2_grpc.AgentBlobServiceStub | None = None
        self._lock = threading.Lock()
        self._session: wire.Metadata = ()
        self._agent: AgentInfo | None = None
        self._running: Callable[[], Sequence[Lease]] = list
        self._keep_credential: Callable[[str], None] | None = None
        self._poll_timeout_s = DEFAULT_POLL_TIMEOUT_S
        self._finish_takes_last_step = False  # until a registration says otherwise

    def close(self) -> None:
        self._closed.set()
        self._stream.close()
        self._channel.close()
        with self._lock:
            if self._transfer_channel is not None:
                self._transfer_channel.close()

    def register(
        self,
        agent: AgentInfo,
        running: Callable[[], Sequence[Lease]],
        *,
        give_up: threading.Event | None = None,
        keep_credential: Callable[[str], None] | None = None,
    ) -> Registration:
        self._agent, self._running = agent, running
        self._keep_credential = keep_credential
        return self._register(agent, _FOREVER, give_up, new_process=True)

    def sign_off(self) -> None:
        try:
            self._stub.SignOff(
                agent_pb2.SignOffRequest(), metadata=self._session, timeout=SIGN_OFF_TIMEOUT_S
            )
        except grpc.RpcError as error:
            LOGGER.warning("could not sign off from the coordinator: %s", describe(error))

    def poll(
        self, *, free_slots: int, draining: bool, stop: threading.Event, held: str = ""
    ) -> Work | None:
        request = agent_pb2.PollWorkRequest(free_slots=free_slots, draining=draining, held=held)

        def cancellable(
            req: agent_pb2.PollWorkRequest, metadata: wire.Metadata, timeout: float
        ) -> agent_pb2.PollWorkResponse:
            future = self._stub.PollWork.future(req, metadata=metadata, timeout=timeout)
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            while not done.wait(STOP_CHECK_S):
                if stop.is_set():
                    future.cancel()  # type: ignore[no-untyped-call]
                    break
            return future.result()

        # The coordinator answers within its poll timeout; the call's own deadline is later.
        timeout_s = self._poll_timeout_s + CALL_TIMEOUT_S
        try:
            reply = self._call(cancellable, request, timeout_s, _FOREVER, stop)
        except (grpc.FutureCancelledError, PeerError):
            if stop.is_set():
                return None
            raise
        return convert.work_from_pb(reply)

    def renew_leases(self, leases: Sequence[Lease], *, timeout_s: float) -> list[LeaseStatus]:
        request = agent_pb2.RenewLeasesRequest(leases=[convert.lease_to_pb(x) for x in leases])
        reply = self._call(self._renew_leases, request, timeout_s, budget_s=0)
        return [convert.lease_status_from_pb(status) for status in reply.leases]

    def start_step(self, lease: Lease, index: int, *, give_up: threading.Event) -> bool:
        request = agent_pb2.StartStepRequest(lease=convert.lease_to_pb(lease), step_index=index)
        return self._call(self._start_step, request, give_up=give_up).cancel_requested

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        request = agent_pb2.AppendLogRequest(
            lease=convert.lease_to_pb(lease), step_index=index, offset=offset, data=data
        )
        reply = self._call(self._append_log, request, give_up=give_up)
        return LogAck(reply.held_length, reply.accepted)

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        if self._unary_only:  # one call at a time, as an older coordinator takes them
            ack = self.append_log(lease, index, offset, data, give_up=give_up)
            return lambda: ack
        request = agent_pb2.AppendLogRequest(
            lease=convert.lease_to_pb(lease), step_index=index, offset=offset, data=data
        )
        try:
            response = self._stream.begin("append_log", request, self._session, CALL_TIMEOUT_S)
        except CallFailed as error:
            failed = to_peer_error(error)

            def raise_failure() -> LogAck:
                raise failed

            return raise_failure

        def answer() -> LogAck:
            try:
                reply: agent_pb2.AppendLogResponse = response()
            except CallFailed as error:
                raise to_peer_error(error) from None
            return LogAck(reply.held_length, reply.accepted)

        return answer

    def finish_step(self, lease: Lease, report: StepReport, *, give_up: threading.Event) -> None:
        request = convert.finish_step_to_pb(lease, report)
        self._call(self._finish_step, request, give_up=give_up)

    def finish_attempt(
        self,
        lease: Lease,
        verdict: Verdict,
        *,
        give_up: threading.Event,
        last_step: StepReport | None = None,
    ) -> Recorded:
        request = convert.finish_attempt_to_pb(lease, verdict)
        if last_step is not None and not self._finish_takes_last_step:
            self.finish_step(lease, last_step, give_up=give_up)  # an older coordinator
        elif last_step is not None:
            request.last_step.CopyFrom(convert.finish_step_to_pb(lease, last_step))
            request.last_step.ClearField("lease")  # the request's own is the one checked
        reply = self._call(self._finish_attempt, request, give_up=give_up)
        return convert.recorded_from_pb(reply)

    def get_inputs(self, lease: Lease) -> Inputs:
        request = blobs_pb2.GetInputsRequest(lease=convert.lease_to_pb(lease))
        reply = self._call(self._blobs().GetInputs, request, budget_s=CALL_RETRY_BUDGET_S)
        return convert.inputs_from_pb(reply)

    def report_source(self, lease: Lease, commit: str, committed_at_ms: int) -> None:
        request = blobs_pb2.ReportSourceRequest(
            lease=convert.lease_to_pb(lease), commit=commit, committed_at_ms=committed_at_ms
        )
        self._call(self._blobs().ReportSource, request, budget_s=CALL_RETRY_BUDGET_S)

    def download(self, lease: Lease, sha256: str) -> Generator[bytes, None, None]:
        request = blobs_pb2.AgentDownloadRequest(lease=convert.lease_to_pb(lease), sha256=sha256)
        return blobs.download(self._blobs(), self._session, request)

    def upload_artifact(
        self,
        lease: Lease,
        artifact: ArtifactFile,
        open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
        *,
        give_up: threading.Event,
    ) -> None:
        header = convert.upload_header_to_pb(lease, artifact)

        def once() -> None:
            with open_chunks() as chunks:
                blobs.upload(self._blobs(), self._session, header, chunks)

        self._call_with_session(
            lambda: self._retrying(_FOREVER, give_up, tries=UPLOAD_TRIES)(once), give_up
        )

    def _event(self, field: str, unary: Callable[..., T]) -> Callable[..., T]:
        """`unary`'s call as a request on the session stream (`field` of an AgentMessage), or
        the unary call itself when the coordinator has no stream."""

        def call(request: object, *, metadata: wire.Metadata, timeout: float) -> T:
            if not self._unary_only:
                try:
                    reply: T = self._stream.call(field, request, metadata, timeout)
                    return reply
                except CallFailed as error:
                    if error.code() is not grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    LOGGER.info("the coordinator has no session stream; using unary calls")
                    self._unary_only = True
            return unary(request, metadata=metadata, timeout=timeout)

        return call

    def _blobs(self) -> blobs_pb2_grpc.AgentBlobServiceStub:
        """The blob service on a second connection, opened on first use."""
        with self._lock:
            if self._blob_stub is None:
                channel = wire.channel(
                    self._address, self._ca.pem if self._ca else None, transfers=True
                )
                self._transfer_channel = channel
                self._blob_stub = blobs_pb2_grpc.AgentBlobServiceStub(channel)
            return self._blob_stub

    def _register(
        self,
        agent: AgentInfo,
        budget_s: float,
        give_up: threading.Event | None,
        *,
        new_process: bool = False,
    ) -> Registration:
        request = agent_pb2.RegisterRequest(
            join_token=self._join_token,
            name=agent.name,
            labels=dict(agent.labels),
            capacity=agent.capacity,
            protocol_version=PROTOCOL_VERSION,
            running=[convert.lease_to_pb(lease) for lease in self._running()],
            agent_credential=agent.credential,
            new_process=new_process,
        )
        try:
            reply = self._retrying(budget_s, give_up)(
                self._stub.Register, request, timeout=CALL_TIMEOUT_S
            )
        except grpc.RpcError as error:
            self._refuse_untrusted(error)
            raise to_join_error(error) from None
        if reply.agent_credential:
            # Kept before the session is used: a crash from here on restarts as this agent.
            if self._keep_credential is not None:
                self._keep_credential(reply.agent_credential)
            self._agent = dataclasses.replace(agent, credential=reply.agent_credential)
        with self._lock:
            self._session = wire.bearer(reply.session_token)
            self._poll_timeout_s = reply.poll_timeout_ms / 1000
            self._finish_takes_last_step = reply.finish_takes_last_step
        return Registration(
            reply.agent_id,
            reply.lease_ttl_ms / 1000,
            reply.renew_interval_ms / 1000,
            reply.mode or "active",
        )

    def _call(
        self,
        method: Callable[..., T],
        request: object,
        timeout_s: float = CALL_TIMEOUT_S,
        budget_s: float = _FOREVER,
        give_up: threading.Event | None = None,
    ) -> T:
        """Calls with the session, retrying transient failures within `budget_s` (by default
        for as long as the caller's lease lasts: its watchdog sets `give_up`)."""
        return self._call_with_session(
            lambda: self._retrying(budget_s, give_up)(
                lambda: method(request, metadata=self._session, timeout=timeout_s)
            ),
            give_up,
            budget_s,
        )

    def _call_with_session(
        self,
        tried: Callable[[], T],
        give_up: threading.Event | None,
        budget_s: float = _FOREVER,
    ) -> T:
        """Runs `tried` (a call with its retries); a session the coordinator forgot (it
        restarted) is registered again once, then `tried` runs again."""
        for attempt in range(2):
            try:
                return tried()
            except grpc.RpcError as error:
                self._refuse_untrusted(error)
                if attempt == 0 and forgot_session(error) and self._agent is not None:
                    LOGGER.warning("coordinator forgot our session; registering again")
                    self._register(self._agent, budget_s, give_up)
                    continue
                raise to_peer_error(error) from None
        raise AssertionError("unreachable")

    def _untrusted(self, error: BaseException) -> str | None:
        """What is wrong with the coordinator's TLS, when that is why `error` happened."""
        if self._ca is None:
            return None
        return handshake_problem(details_of(error), self._ca, self._address)

    def _refuse_untrusted(self, error: grpc.RpcError) -> None:
        problem = self._untrusted(error)
        if problem is not None:
            raise UntrustedServerError(problem) from None

    def _retrying(
        self, budget_s: float, give_up: threading.Event | None, *, tries: int | None = None
    ) -> Retrying:
        stops = [stop_after_delay(budget_s), stop_when_event_set(self._closed)]
        if tries is not None:
            stops.append(stop_after_attempt(tries))
        if give_up is not None:
            stops.append(stop_when_event_set(give_up))
        return Retrying(
            retry=retry_if_exception(lambda e: is_retryable(e) and self._untrusted(e) is None),
            wait=wait_exponential_jitter(initial=RETRY_INITIAL_S, max=RETRY_MAX_S),
            stop=stop_any(*stops),
            reraise=True,
            before_sleep=_log_retry,
        )
