"""A coordinator as an agent of this version meets an older one: a gRPC proxy in front of a real
coordinator that knows no `AgentService/Session` stream (it answers UNIMPLEMENTED, as a server
without the method does) and registers agents without `finish_takes_last_step`. Every other
unary call is forwarded as it is, with its metadata, deadline and status."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import grpc

from conveyor import wire
from conveyor.v1 import agent_pb2

SESSION = "/conveyor.v1.AgentService/Session"
REGISTER = "/conveyor.v1.AgentService/Register"
WORKERS = 16  # enough for an agent's long polls, renewals and step calls at once


if TYPE_CHECKING:  # generic only in the type stubs
    _Handler = grpc.GenericRpcHandler[Any, Any]
else:
    _Handler = grpc.GenericRpcHandler


def _older_register_reply(reply: bytes) -> bytes:
    """The reply an older coordinator gives: it cannot take a step's end inside the finish."""
    message = agent_pb2.RegisterResponse.FromString(reply)
    message.ClearField("finish_takes_last_step")
    return message.SerializeToString()


class _Forward(_Handler):
    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel
        self.forwarded: list[str] = []
        self.refused: list[str] = []

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        if method == SESSION:
            self.refused.append(method)
            return None  # no such method here: the server answers UNIMPLEMENTED
        call = self._channel.unary_unary(method, None, None)  # bytes in, bytes out
        rewrite = _older_register_reply if method == REGISTER else None
        return grpc.unary_unary_rpc_method_handler(self._forwarder(method, call, rewrite))

    def _forwarder(
        self,
        method: str,
        call: grpc.UnaryUnaryMultiCallable[Any, Any],
        rewrite: Callable[[bytes], bytes] | None,
    ) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.forwarded.append(method)
            metadata = tuple(context.invocation_metadata())
            try:
                reply: bytes = call(request, metadata=metadata, timeout=context.time_remaining())
            except grpc.RpcError as error:
                failed: Any = error
                context.abort(failed.code(), failed.details())
            return rewrite(reply) if rewrite else reply

        return forward


class OlderCoordinator:
    """Listens on 127.0.0.1 (`address`) and forwards to `target` as described above."""

    def __init__(self, target: str) -> None:
        self._channel = wire.insecure_channel(target)
        self._handler = _Forward(self._channel)
        self._server = grpc.server(ThreadPoolExecutor(WORKERS), options=list(wire.SERVER_OPTIONS))
        self._server.add_generic_rpc_handlers((self._handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.address = f"127.0.0.1:{port}"

    @property
    def forwarded(self) -> list[str]:
        return list(self._handler.forwarded)

    @property
    def refused(self) -> list[str]:
        return list(self._handler.refused)

    def close(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()
