"""The gRPC listener: every service on one server, over the one `Coordinator`."""

from __future__ import annotations

import socket

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conveyor import wire
from conveyor.v1 import (
    agent_pb2_grpc,
    blobs_pb2_grpc,
    notify_pb2_grpc,
    repos_pb2_grpc,
    secrets_pb2_grpc,
)
from coordinator.domain.coordinator import Coordinator
from coordinator.edge.agent_service import AgentService
from coordinator.edge.blob_service import AgentBlobService, BlobService
from coordinator.edge.control_service import ControlService
from coordinator.edge.notify_service import NotifyService
from coordinator.edge.repo_service import RepoService
from coordinator.edge.secret_service import SecretService
from coordinator.edge.shared_encoding import register_control_service
from coordinator.tls import ServerTls

# gRPC sets SO_REUSEPORT by default: a second coordinator on a port in use would bind it too, and
# clients would reach either at random. Off, binding a port in use fails.
NO_REUSEPORT = ("grpc.so_reuseport", 0)


# The whole server ("") and each service by its full name, as health checkers ask.
HEALTH_SERVICES = (
    "",
    "conveyor.v1.AgentService",
    "conveyor.v1.ControlService",
    "conveyor.v1.AgentBlobService",
    "conveyor.v1.BlobService",
)


class ListenError(OSError):
    """The listen address cannot be bound (in use, or not this machine's)."""


def _in_use(listen: str) -> ListenError:
    return ListenError(
        f"cannot listen on {listen}: the address is in use (another coordinator "
        "or program) or not this machine's; stop that one or pass another --listen"
    )


def _check_free(listen: str) -> None:
    """Refuses a listen address in use before gRPC tries it (gRPC's own failure is a native log
    line and a bare RuntimeError). SO_REUSEADDR as gRPC sets it, so a restart on a port with
    connections in TIME_WAIT is not refused."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return
    try:
        found = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    except OSError:
        return  # gRPC reports an address it cannot resolve
    for family, kind, proto, _name, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                raise _in_use(listen) from error


class GrpcEdge:
    def __init__(self, core: Coordinator, listen: str, tls: ServerTls | None = None) -> None:
        """Serves TLS with `tls`, else plaintext."""
        self._listen = listen
        self._tls = tls
        self._server = grpc.aio.server(options=[*wire.SERVER_OPTIONS, NO_REUSEPORT])
        self._agent_service = AgentService(core)
        agent_pb2_grpc.add_AgentServiceServicer_to_server(self._agent_service, self._server)
        register_control_service(ControlService(core), self._server)
        blobs_pb2_grpc.add_AgentBlobServiceServicer_to_server(AgentBlobService(core), self._server)
        blobs_pb2_grpc.add_BlobServiceServicer_to_server(BlobService(core), self._server)
        secrets_pb2_grpc.add_SecretServiceServicer_to_server(SecretService(core), self._server)
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(NotifyService(core), self._server)
        repos_pb2_grpc.add_RepoServiceServicer_to_server(RepoService(core), self._server)
        # The standard health service: SERVING once started, NOT_SERVING while stopping.
        self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)

    async def start(self) -> str:
        """Binds and starts serving; returns the address bound (`host:port`, port 0 resolved)."""
        _check_free(self._listen)
        try:
            if self._tls is None:
                port = self._server.add_insecure_port(self._listen)
            else:
                credentials = grpc.ssl_server_credentials([(self._tls.key_pem, self._tls.cert_pem)])
                port = self._server.add_secure_port(self._listen, credentials)
        except RuntimeError:
            port = 0
        if port == 0:
            raise _in_use(self._listen)
        await self._server.start()
        for service in HEALTH_SERVICES:
            await self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        return f"{self._listen.rsplit(':', 1)[0]}:{port}"

    async def stop(self, grace_s: float) -> None:
        """Refuses new calls and gives those in flight `grace_s` to finish."""
        await self._health.enter_graceful_shutdown()
        self._agent_service.end_streams()
        await self._server.stop(grace_s)
