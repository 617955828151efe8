"""The per-event calls over one `Session` stream per session instead of one unary call each.

Each request gets an id and waits for the reply with that id. A stream that breaks fails every
request in flight as UNAVAILABLE (as a unary call to an unreachable coordinator fails), and the
caller's retry policy tries it again on a new stream: every request is idempotent, which is what
makes a retry safe. Only a refusal of the stream itself keeps its code (UNAUTHENTICATED: the
coordinator forgot the session; UNIMPLEMENTED: a coordinator without streams), so the caller can
register again, or fall back to unary calls.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import grpc

from agent.config import STREAM_MAX_IN_FLIGHT
from agent.peer.grpc.errors import CallFailed, code_of, details_of
from conveyor import wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc

LOGGER = logging.getLogger(__name__)

# A stream's own failures that say something about the session, not the connection.
_KEPT_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_END = None  # what the outbox holds to end the request iterator


def _broken(error: grpc.RpcError | None) -> CallFailed:
    if error is None:
        return CallFailed(grpc.StatusCode.UNAVAILABLE, "the coordinator ended the session stream")
    code = code_of(error)
    details = details_of(error) or str(error)
    if code in _KEPT_CODES:
        return CallFailed(code, details)
    return CallFailed(grpc.StatusCode.UNAVAILABLE, f"session stream broken: {details}")


class _OpenStream:
    """One `Session` call: a thread reads its replies and hands each to its request's future."""

    def __init__(self, stub: agent_pb2_grpc.AgentServiceStub, metadata: wire.Metadata) -> None:
        self.metadata = metadata
        self._outbox: queue.Queue[agent_pb2.AgentMessage | None] = queue.Queue()
        self._lock = threading.Lock()
        self._pending: dict[int, Future[agent_pb2.CoordinatorMessage]] = {}
        self._ids = itertools.count(1)
        self._failure: CallFailed | None = None
        self.last_heard = time.monotonic()
        self._replies = stub.Session(self._requests(), metadata=metadata)
        threading.Thread(target=self._read, name="session-stream", daemon=True).start()

    @property
    def broken(self) -> bool:
        return self._failure is not None

    def send(self, message: agent_pb2.AgentMessage) -> Future[agent_pb2.CoordinatorMessage]:
        future: Future[agent_pb2.CoordinatorMessage] = Future()
        with self._lock:
            if self._failure is not None:
                raise CallFailed(self._failure.code(), self._failure.details())
            message.id = next(self._ids)
            self._pending[message.id] = future
        self._outbox.put(message)
        return future

    def forget(self, future: Future[agent_pb2.CoordinatorMessage]) -> None:
        with self._lock:
            for key, value in list(self._pending.items()):
                if value is future:
                    del self._pending[key]

    def close(self) -> None:
        self._replies.cancel()  # type: ignore[no-untyped-call]
        self._fail(_broken(None))

    def _requests(self) -> Iterator[agent_pb2.AgentMessage]:
        while (message := self._outbox.get()) is not _END:
            yield message

    def _read(self) -> None:
        error: grpc.RpcError | None = None
        try:
            for reply in self._replies:
                self.last_heard = time.monotonic()
                with self._lock:
                    future = self._pending.pop(reply.id, None)
                if future is not None:
                    future.set_result(reply)
        except grpc.RpcError as failure:
            error = failure
        self._fail(_broken(error))

    def _fail(self, failure: CallFailed) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = failure
            pending, self._pending = self._pending, {}
        self._outbox.put(_END)
        for future in pending.values():  # each its own error: each is raised in its own thread
            future.set_exception(CallFailed(self._failure.code(), self._failure.details()))


def _once(release: Callable[[], None]) -> Callable[[], None]:
    """`release`, run at most once however often (and from whichever thread) it is called."""
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        release()

    return run


class SessionStream:
    """Per-event requests of the session whose metadata each call presents, over one stream
    (opened on first use, and again after a break or a new session)."""

    def __init__(self, stub: agent_pb2_grpc.AgentServiceStub) -> None:
        self._stub = stub
        self._lock = threading.Lock()
        self._open: _OpenStream | None = None
        self._slots = threading.BoundedSemaphore(STREAM_MAX_IN_FLIGHT)

    def call(self, field: str, request: Any, metadata: wire.Metadata, timeout: float) -> Any:
        """The response to `request`, sent as the `field` of an AgentMessage; raises
        :class:`CallFailed` as its unary call would raise an RpcError."""
        return self.begin(field, request, metadata, timeout)()

    def begin(
        self, field: str, request: Any, metadata: wire.Metadata, timeout: float
    ) -> Callable[[], Any]:
        """Sends `request` now and returns what waits for its response (as `call` returns it):
        the caller may send more before it waits. Requests go out in the order they are sent."""
        if not self._slots.acquire(timeout=timeout):
            raise CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests in flight")
        release = _once(self._slots.release)
        try:
            stream = self._stream(metadata)
            sent_at = time.monotonic()
            future = stream.send(agent_pb2.AgentMessage(**{field: request}))
        except BaseException:
            release()
            raise
        # The slot is given back when the reply (or the stream's failure) comes, whether or not
        # anyone still waits for it: a caller that gave up on a response holds no slot.
        future.add_done_callback(lambda _: release())

        def response() -> Any:
            try:
                return self._reply(stream, future, sent_at, field, timeout)
            except CallFailed:
                if not future.done():
                    release()  # forgotten after a timeout: no reply will come for it
                raise

        return response

    def close(self) -> None:
        with self._lock:
            opened, self._open = self._open, None
        if opened is not None:
            opened.close()

    @staticmethod
    def _reply(
        stream: _OpenStream,
        future: Future[agent_pb2.CoordinatorMessage],
        sent_at: float,
        field: str,
        timeout: float,
    ) -> Any:
        try:
            reply = future.result(timeout)
        except FutureTimeout:
            stream.forget(future)
            if stream.last_heard < sent_at:
                # Nothing at all came back meanwhile: the connection may be half open, and the
                # retry must not wait on it again.
                LOGGER.warning("session stream silent for %.1f s; opening a new one", timeout)
                stream.close()
            raise CallFailed(grpc.StatusCode.DEADLINE_EXCEEDED, "no reply in time") from None
        if reply.WhichOneof("reply") == "error":
            code = _BY_NUMBER.get(reply.error.code, grpc.StatusCode.UNKNOWN)
            raise CallFailed(code, reply.error.details)
        return getattr(reply, field)

    def _stream(self, metadata: wire.Metadata) -> _OpenStream:
        with self._lock:
            current = self._open
            if current is None or current.broken or current.metadata != metadata:
                if current is not None:
                    current.close()  # a new session: the old stream's credential is void
                current = self._open = _OpenStream(self._stub, metadata)
            return current


__all__ = ["SessionStream"]
