"""Shared state enums to and from their protobuf mirrors, and gRPC channel settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from conveyor.states import BuildStatus, JobStatus, Outcome, StepStatus
from conveyor.v1 import types_pb2

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# 16 MiB leaves room above the largest log batch or listing we send (4 MiB is gRPC's default).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Keepalive pings find a dead peer behind a silent network in tens of seconds, not hours.
KEEPALIVE_TIME_MS = 20_000
KEEPALIVE_TIMEOUT_MS = 10_000

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after a coordinator restart instead of gRPC's default of up to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)

# Bulk transfers (sources, artifacts): a fixed 4 MiB flow-control window per stream instead of
# BDP probing, which on a fast link grows it until tens of MiB of a blob sit in memory.
TRANSFER_WINDOW_BYTES = 4 * 1024 * 1024
_TRANSFER_FLOW: Sequence[tuple[str, int]] = (
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", TRANSFER_WINDOW_BYTES),
)
TRANSFER_CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (*CHANNEL_OPTIONS, *_TRANSFER_FLOW)

# A call that reached the server but that its busy event loop has not taken up yet is cancelled
# after this long (gRPC's own default is 30 s): under a burst (a thousand followers catching up
# on a log) a newcomer waits its turn instead of failing CANCELLED. Clients keep their deadlines.
SERVER_UNTAKEN_CALL_MAX_S = 300

SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.server_max_unrequested_time_in_server", SERVER_UNTAKEN_CALL_MAX_S),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    *_TRANSFER_FLOW,
)


Metadata = tuple[tuple[str, str | bytes], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def token_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return None


def insecure_channel(target: str, *, transfers: bool = False) -> grpc.Channel:
    """A plaintext channel to the coordinator; `transfers` for one that carries blob streams."""
    return channel(target, None, transfers=transfers)


def channel(target: str, root_ca: bytes | None, *, transfers: bool = False) -> grpc.Channel:
    """A channel to the coordinator: TLS verified against `root_ca` (PEM), or plaintext
    without one; `transfers` for one that carries blob streams."""
    options = list(TRANSFER_CHANNEL_OPTIONS if transfers else CHANNEL_OPTIONS)
    if root_ca is None:
        return grpc.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=root_ca)
    return grpc.secure_channel(target, credentials, options=options)


def build_status_to_pb(status: BuildStatus) -> types_pb2.BuildStatus.ValueType:
    return types_pb2.BuildStatus.Value(f"BUILD_STATUS_{status.name}")


def build_status_from_pb(value: int) -> BuildStatus:
    return BuildStatus[types_pb2.BuildStatus.Name(value).removeprefix("BUILD_STATUS_")]  # type: ignore[arg-type]


def job_status_to_pb(status: JobStatus) -> types_pb2.JobStatus.ValueType:
    return types_pb2.JobStatus.Value(f"JOB_STATUS_{status.name}")


def job_status_from_pb(value: int) -> JobStatus:
    return JobStatus[types_pb2.JobStatus.Name(value).removeprefix("JOB_STATUS_")]  # type: ignore[arg-type]


def step_status_to_pb(status: StepStatus) -> types_pb2.StepStatus.ValueType:
    return types_pb2.StepStatus.Value(f"STEP_STATUS_{status.name}")


def step_status_from_pb(value: int) -> StepStatus:
    return StepStatus[types_pb2.StepStatus.Name(value).removeprefix("STEP_STATUS_")]  # type: ignore[arg-type]


def outcome_to_pb(outcome: Outcome | None) -> types_pb2.Outcome.ValueType:
    if outcome is None:
        return types_pb2.OUTCOME_UNSPECIFIED
    return types_pb2.Outcome.Value(f"OUTCOME_{outcome.name}")


def outcome_from_pb(value: int) -> Outcome | None:
    if value == types_pb2.OUTCOME_UNSPECIFIED:
        return None
    return Outcome[types_pb2.Outcome.Name(value).removeprefix("OUTCOME_")]  # type: ignore[arg-type]
