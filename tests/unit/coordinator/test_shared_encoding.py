"""Followers of the same chunk or snapshot share one encoding of it; each decodes to exactly the
message the follower would have got built for it alone."""

from __future__ import annotations

from conveyor.states import BuildStatus
from conveyor.v1 import control_pb2
from coordinator.domain.follow import LogChunk
from coordinator.domain.records import BuildRecord
from coordinator.edge.convert import build_to_pb, log_chunk_to_pb
from coordinator.edge.shared_encoding import SharedEncodings, _passthrough

DATA = b"line\n" * 1000


def chunk(data: bytes, offset: int = 0) -> LogChunk:
    return LogChunk("build", 1, 0, "compile", offset, data)


def test_followers_of_one_shared_chunk_get_one_encoding_of_it() -> None:
    encodings = SharedEncodings()
    first = encodings.log_chunk(chunk(DATA))
    # Another follower's chunk: its own LogChunk, the same shared bytes object.
    assert encodings.log_chunk(chunk(DATA)) is first
    assert control_pb2.LogChunk.FromString(first) == log_chunk_to_pb(chunk(DATA))


def test_a_chunk_of_other_bytes_or_at_another_place_is_encoded_for_itself() -> None:
    encodings = SharedEncodings()
    first = encodings.log_chunk(chunk(DATA))
    other = bytes(bytearray(DATA))  # equal, but read for someone else: not shared
    assert encodings.log_chunk(chunk(other)) is not first
    moved = control_pb2.LogChunk.FromString(encodings.log_chunk(chunk(DATA, offset=5)))
    assert moved.offset == 5


def test_watch_events_carry_the_chunk_and_the_snapshot() -> None:
    encodings = SharedEncodings()
    event = control_pb2.BuildEvent.FromString(encodings.log_event(chunk(DATA)))
    assert event.log == log_chunk_to_pb(chunk(DATA))
    build = BuildRecord(7, "b", BuildStatus.RUNNING, 0, None, False)
    encoded = encodings.snapshot_event(build)
    assert encodings.snapshot_event(build) is encoded
    assert control_pb2.BuildEvent.FromString(encoded).snapshot == build_to_pb(build)


def test_only_the_newest_encodings_are_kept() -> None:
    encodings = SharedEncodings(kept=2)
    chunks = [bytes([index]) * 10 for index in range(3)]
    first = encodings.log_chunk(chunk(chunks[0]))
    encodings.log_chunk(chunk(chunks[1]))
    encodings.log_chunk(chunk(chunks[2]))
    assert encodings.log_chunk(chunk(chunks[0])) is not first  # dropped, encoded again


def test_the_streams_serializer_sends_encoded_bytes_as_they_are() -> None:
    serialize = _passthrough(control_pb2.LogChunk.SerializeToString)
    message = log_chunk_to_pb(chunk(b"x"))
    assert serialize(message) == message.SerializeToString()
    encoded = message.SerializeToString()
    assert serialize(encoded) is encoded
