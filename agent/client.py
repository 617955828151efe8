"""The agent's connection to the coordinator: one retry policy, one error classifier.

Retried (backoff with jitter): UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED. A lost session
(UNAUTHENTICATED on a session call) re-registers once. FAILED_PRECONDITION on a call about an
attempt means the attempt is no longer ours: raised as FencedError. Everything else is raised.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc
from tenacity import (
    Retrying,
    retry_if_exception,
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
    AgentConfig,
)
from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc, types_pb2

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# How often a blocked long-poll looks at the stop flag.
STOP_CHECK_S = 0.1

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class FencedError(Exception):
    """The coordinator says this attempt is no longer ours."""


class JoinRefusedError(Exception):
    """The coordinator refused the join token (or the protocol version): retrying won't help."""


def _code(error: BaseException) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and _code(error) in RETRYABLE


def describe(error: BaseException | None) -> str:
    """A one-line account of a failed call, without gRPC's debug dump."""
    if isinstance(error, grpc.Call):
        code = error.code()
        return f"{code.name if code else 'UNKNOWN'}: {error.details()}"
    return repr(error)


class CoordinatorClient:
    def __init__(self, config: AgentConfig, abort: threading.Event) -> None:
        self._config = config
        self._abort = abort
        self._channel = wire.insecure_channel(config.coordinator)
        self._stub = agent_pb2_grpc.AgentServiceStub(self._channel)
        self._session: wire.Metadata = ()
        self._transfer_channel: grpc.Channel | None = None
        self._lock = threading.Lock()
        self.running: Callable[[], Sequence[types_pb2.Lease]] = list
        self.registration: agent_pb2.RegisterResponse | None = None

    def close(self) -> None:
        self._channel.close()
        if self._transfer_channel is not None:
            self._transfer_channel.close()

    def _retrying(self, budget_s: float, interrupt: threading.Event | None = None) -> Retrying:
        stops = [stop_after_delay(budget_s), stop_when_event_set(self._abort)]
        if interrupt is not None:
            stops.append(stop_when_event_set(interrupt))
        return Retrying(
            retry=retry_if_exception(is_retryable),
            wait=wait_exponential_jitter(initial=RETRY_INITIAL_S, max=RETRY_MAX_S),
            stop=stop_any(*stops),
            reraise=True,
            before_sleep=lambda state: (
                LOGGER.warning(
                    "coordinator call failed (%s); retrying", describe(state.outcome.exception())
                )
                if state.outcome
                else None
            ),
        )

    def register(
        self, budget_s: float = float("inf"), interrupt: threading.Event | None = None
    ) -> agent_pb2.RegisterResponse:
        request = agent_pb2.RegisterRequest(
            join_token=self._config.join_token,
            name=self._config.name,
            labels=self._config.labels,
            capacity=self._config.concurrency,
            protocol_version=PROTOCOL_VERSION,
            running=list(self.running()),
        )
        try:
            reply = self._retrying(budget_s, interrupt)(
                self._stub.Register, request, timeout=CALL_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if _code(error) in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                raise JoinRefusedError(
                    error.details() if isinstance(error, grpc.Call) else ""
                ) from None
            raise
        with self._lock:
            self._session = wire.bearer(reply.session_token)
            self.registration = reply
        return reply

    def call(
        self,
        method: Callable[..., T],
        request: object,
        *,
        timeout_s: float = CALL_TIMEOUT_S,
        budget_s: float = CALL_RETRY_BUDGET_S,
        interrupt: threading.Event | None = None,
    ) -> T:
        """Calls with the session, retrying transient errors within `budget_s`.

        A set `interrupt` ends the retries (the last error is raised).
        """
        for attempt in range(2):
            try:
                return self._retrying(budget_s, interrupt)(
                    lambda: method(request, metadata=self._session, timeout=timeout_s)
                )
            except grpc.RpcError as error:
                code = _code(error)
                if code is grpc.StatusCode.FAILED_PRECONDITION:
                    raise FencedError(
                        error.details() if isinstance(error, grpc.Call) else ""
                    ) from None
                details = error.details() if isinstance(error, grpc.Call) else ""
                if code is grpc.StatusCode.UNAUTHENTICATED and "session replaced" in (
                    details or ""
                ):
                    # Taking the session back would cut the other agent off in turn, forever.
                    raise JoinRefusedError(details) from None
                if code is grpc.StatusCode.UNAUTHENTICATED and attempt == 0:
                    LOGGER.warning("coordinator forgot our session; registering again")
                    self.register(budget_s, interrupt)
                    continue
                raise
        raise AssertionError("unreachable")

    def poll(
        self, request: agent_pb2.PollWorkRequest, timeout_s: float, stop: threading.Event
    ) -> agent_pb2.PollWorkResponse | None:
        """Long-polls for work; returns None as soon as `stop` is set."""

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

        try:
            return self.call(
                cancellable, request, timeout_s=timeout_s, budget_s=float("inf"), interrupt=stop
            )
        except (grpc.FutureCancelledError, grpc.RpcError):
            if stop.is_set():
                return None
            raise

    @property
    def stub(self) -> agent_pb2_grpc.AgentServiceStub:
        return self._stub

    @property
    def transfer_channel(self) -> grpc.Channel:
        """A second connection for blob streams, so bulk bytes never delay leases or logs."""
        with self._lock:
            if self._transfer_channel is None:
                self._transfer_channel = wire.insecure_channel(
                    self._config.coordinator, transfers=True
                )
            return self._transfer_channel

    @property
    def session(self) -> wire.Metadata:
        """Metadata of the current session, for calls that cannot go through `call`."""
        return self._session
