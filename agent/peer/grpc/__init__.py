"""The :class:`~agent.peer.base.Peer` the agent uses in production: the coordinator over gRPC.

The only part of the agent that imports ``grpc`` or ``conveyor.v1`` (an import-linter contract
in pyproject.toml keeps it so): conversion in :mod:`.convert`, error mapping and the retry
classifier in :mod:`.errors`, blob streams in :mod:`.blobs`.
"""

from agent.peer.grpc.peer import GrpcPeer

__all__ = ["GrpcPeer"]
