"""An agent's session stream: requests read off it are handled concurrently (a slow finish must
not hold up another attempt's log), each by the same body its unary call uses, and each answered
on the stream under its id, with the status the unary call would have ended with on error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from conveyor.v1 import agent_pb2
from coordinator.config import AGENT_STREAM_MAX_IN_FLIGHT
from coordinator.domain.metrics import Metrics
from coordinator.domain.registry import AgentSession
from coordinator.edge.agent_calls import AgentCalls
from coordinator.edge.errors import details, status_for

LOGGER = logging.getLogger(__name__)

Handler = Callable[[AgentSession, Any], Awaitable[Any]]

# The request's oneof field (the reply's is named the same) and the unary call it stands for.
_CALLS = {
    "renew_leases": "RenewLeases",
    "start_step": "StartStep",
    "append_log": "AppendLog",
    "finish_step": "FinishStep",
    "finish_attempt": "FinishAttempt",
}


class SessionStream:
    """One open stream of the agent whose session token is `token`."""

    def __init__(
        self,
        calls: AgentCalls,
        session: Callable[[str | None], AgentSession],
        metrics: Metrics,
        token: str | None,
    ) -> None:
        self._handlers: dict[str, Handler] = {field: getattr(calls, field) for field in _CALLS}
        self._session = session
        self._metrics = metrics
        self._token = token
        # Taken per request read, given back once its reply is sent: bounds both the requests
        # in hand and the replies waiting to go out.
        self._slots = asyncio.Semaphore(AGENT_STREAM_MAX_IN_FLIGHT)
        self._out: asyncio.Queue[agent_pb2.CoordinatorMessage | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None

    def end(self) -> None:
        """The server is stopping: no more requests are read, those in hand are answered, then
        the stream ends (the agent sends what was not answered again, on its next stream)."""
        if self._reader is not None:
            self._reader.cancel()

    async def replies(
        self, requests: AsyncIterator[agent_pb2.AgentMessage]
    ) -> AsyncIterator[agent_pb2.CoordinatorMessage]:
        reader = self._reader = asyncio.create_task(self._read(requests))
        try:
            while (reply := await self._out.get()) is not None:
                yield reply
                self._slots.release()
        finally:
            reader.cancel()
            for task in list(self._tasks):  # the stream is gone: their replies reach nobody
                task.cancel()

    async def _read(self, requests: AsyncIterator[agent_pb2.AgentMessage]) -> None:
        try:
            async for message in requests:
                await self._slots.acquire()
                task = asyncio.create_task(self._answer(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except asyncio.CancelledError:
            pass  # end(), or the stream is gone (replies() then cancels the tasks too)
        finally:
            # The agent closed its side, or the server stops: what was read is still answered.
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._out.put_nowait(None)

    async def _answer(self, message: agent_pb2.AgentMessage) -> None:
        self._out.put_nowait(await self._reply(message))

    async def _reply(self, message: agent_pb2.AgentMessage) -> agent_pb2.CoordinatorMessage:
        field = message.WhichOneof("request")
        try:
            if field is None:
                raise ValueError("the message carries no request")
            self._metrics.agent_request(_CALLS[field], "stream")
            # Looked up per request, as a unary call does: a session replaced or forgotten
            # while the stream is open is refused from the next request on.
            agent = self._session(self._token)
            response = await self._handlers[field](agent, getattr(message, field))
        except Exception as error:  # each request's error is its own reply
            return agent_pb2.CoordinatorMessage(id=message.id, error=_call_error(field, error))
        return agent_pb2.CoordinatorMessage(id=message.id, **{field: response})


def _call_error(field: str | None, error: Exception) -> agent_pb2.CallError:
    code = status_for(error)
    if code is None:
        LOGGER.error("%s failed", _CALLS.get(field or "", "a stream request"), exc_info=error)
        code, text = grpc.StatusCode.INTERNAL, f"internal error: {error}"
    else:
        text = str(error)
    return agent_pb2.CallError(code=code.value[0], details=details(text))


__all__ = ["SessionStream"]
