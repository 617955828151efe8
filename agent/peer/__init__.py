"""The agent's side of the protocol: :class:`Peer` and the domain types it speaks.

Importing this package never loads gRPC; :mod:`agent.peer.grpc` holds the implementation.
"""

from agent.peer.base import FencedError, JoinRefusedError, Peer, PeerError, UntrustedServerError
from agent.peer.types import (
    AgentInfo,
    ArtifactFile,
    Assignment,
    GitSource,
    Inputs,
    Lease,
    LeaseState,
    LeaseStatus,
    LogAck,
    NeededArtifact,
    PendingAck,
    Recorded,
    Registration,
    Snapshot,
    StepReport,
    StepSpec,
    Verdict,
    Work,
)

__all__ = [
    "AgentInfo",
    "ArtifactFile",
    "Assignment",
    "FencedError",
    "GitSource",
    "Inputs",
    "JoinRefusedError",
    "Lease",
    "LeaseState",
    "LeaseStatus",
    "LogAck",
    "NeededArtifact",
    "Peer",
    "PeerError",
    "PendingAck",
    "Recorded",
    "Registration",
    "Snapshot",
    "StepReport",
    "StepSpec",
    "UntrustedServerError",
    "Verdict",
    "Work",
]
