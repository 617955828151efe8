"""Followers of one build share the encoding of what they are sent, not only its reading.

The streams of a build get the same snapshot object and, at the same place in a log, the same
bytes object (coordinator/domain/follow.py shares both). Encoding them once for all of them saves
each follower a protobuf message built around the chunk's bytes and its serialization (two
copies of up to LOG_READ_CHUNK_BYTES): the streaming methods send the encoded bytes as they are
(`register_control_service`, whose serializer lets bytes through).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from conveyor.v1 import control_pb2, control_pb2_grpc
from coordinator.config import SHARED_ENCODINGS_KEPT
from coordinator.domain.follow import LogChunk
from coordinator.domain.records import BuildRecord
from coordinator.edge.convert import build_to_pb, log_chunk_to_pb

# The methods whose responses may be bytes encoded here.
_PASSTHROUGH = ("WatchBuild", "ReadLogs")
_SERVICE = "conveyor.v1.ControlService"


class SharedEncodings:
    """Encoded messages by the identity of what they encode, the newest few kept.

    An entry holds the object it was made from, so the object's id() cannot be reused by another
    while the entry lives; a follower with an object of its own (not shared) encodes it anew.
    """

    def __init__(self, kept: int = SHARED_ENCODINGS_KEPT) -> None:
        self._kept = kept
        self._entries: OrderedDict[tuple[object, ...], tuple[object, bytes]] = OrderedDict()

    def log_chunk(self, chunk: LogChunk) -> bytes:
        """A ReadLogs response."""
        return self._encoded(("chunk", *_place(chunk)), chunk.data, lambda: log_chunk_to_pb(chunk))

    def log_event(self, chunk: LogChunk) -> bytes:
        """A WatchBuild response carrying the chunk."""
        return self._encoded(
            ("event", *_place(chunk)),
            chunk.data,
            lambda: control_pb2.BuildEvent(log=log_chunk_to_pb(chunk)),
        )

    def snapshot_event(self, build: BuildRecord) -> bytes:
        """A WatchBuild response carrying the build's snapshot."""
        return self._encoded(
            ("snapshot",),
            build,
            lambda: control_pb2.BuildEvent(snapshot=build_to_pb(build)),
        )

    def _encoded(
        self, kind: tuple[object, ...], shared: object, message: Callable[[], Message]
    ) -> bytes:
        key = (*kind, id(shared))
        entry = self._entries.get(key)
        if entry is not None and entry[0] is shared:
            self._entries.move_to_end(key)
            return entry[1]
        encoded: bytes = message().SerializeToString()
        self._entries[key] = (shared, encoded)
        if len(self._entries) > self._kept:
            self._entries.popitem(last=False)
        return encoded


def _place(chunk: LogChunk) -> tuple[object, ...]:
    # With the shared bytes' identity, where they are in which log says which chunk this is.
    return (chunk.job, chunk.attempt_number, chunk.step_index, chunk.step_name, chunk.offset)


def _passthrough(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    return lambda message: message if isinstance(message, bytes) else serialize(message)


class _Captured:
    """Stands in for the server while the generated code registers the service's handlers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers = dict(handlers)


def register_control_service(
    servicer: control_pb2_grpc.ControlServiceServicer, server: grpc.aio.Server
) -> None:
    """Registers the control service as the generated code does, except that the streaming
    methods' serializers send bytes already encoded as they are."""
    captured = _Captured()
    control_pb2_grpc.add_ControlServiceServicer_to_server(servicer, captured)  # type: ignore[arg-type]
    handlers = captured.handlers
    for name in _PASSTHROUGH:
        generated = handlers[name]
        assert generated.unary_stream is not None, f"{name} streams its responses"
        handlers[name] = grpc.unary_stream_rpc_method_handler(
            generated.unary_stream,
            request_deserializer=generated.request_deserializer,
            response_serializer=_passthrough(generated.response_serializer),  # type: ignore[arg-type]
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)  # type: ignore[attr-defined]
