"""The CLI's connection to the coordinator: address and token resolution, errors in words."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import grpc

from conveyor import wire
from conveyor.cli.connection import Connection, resolve
from conveyor.cli.errors import EXIT_FAILED, EXIT_UNAVAILABLE, CliError
from conveyor.tls import Target, TrustedCa, handshake_problem
from conveyor.v1 import control_pb2, control_pb2_grpc

# Unary calls give up after this long; streams have no deadline.
CALL_TIMEOUT_S = 30.0

T = TypeVar("T")


def explain(error: grpc.RpcError, address: str, ca: TrustedCa | None = None) -> CliError:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    detail = error.details() if isinstance(error, grpc.Call) else str(error)
    if code is grpc.StatusCode.UNAVAILABLE:
        problem = handshake_problem(detail or "", ca, address)
        if problem is not None:
            return CliError(problem, EXIT_UNAVAILABLE)
        return CliError(f"cannot reach the coordinator at {address} ({detail})", EXIT_UNAVAILABLE)
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return CliError(
            f"the coordinator at {address} refused the client token: it is missing, wrong "
            "or revoked (check --token or CONVEYOR_TOKEN)"
        )
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
    ):
        return CliError(detail or code.name)
    if code is grpc.StatusCode.DATA_LOSS:
        # Stored bytes went missing behind the coordinator: reconnecting would not bring them back.
        return CliError(f"coordinator error {code.name}: {detail}", EXIT_FAILED)
    return CliError(f"coordinator error {code.name}: {detail}", EXIT_UNAVAILABLE)


class Client:
    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        ca: str | None = None,
        *,
        connection: Connection | None = None,
    ) -> None:
        """`address`, `token` and `ca` (a CA file) as the flags of those names would give
        them; or the `connection` already resolved (see `conveyor.cli.connection`)."""
        if connection is None:
            flags = argparse.Namespace(coordinator=address, token=token, ca=ca)
            connection = resolve(flags)
        self.connection = connection
        self.target = Target(connection.address, connection.ca)
        self.address = connection.address
        self._metadata = wire.bearer(connection.token)
        self._channel = wire.channel(self.address, self.target.root_ca)
        self._stub = control_pb2_grpc.ControlServiceStub(self._channel)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        """The client a command's connection options describe (`parsing.client_options`)."""
        return cls(connection=resolve(args))

    def close(self) -> None:
        self._channel.close()

    def explain(self, error: grpc.RpcError) -> CliError:
        return explain(error, self.address, self.target.ca)

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    @property
    def metadata(self) -> wire.Metadata:
        return self._metadata

    def _call(self, method: Callable[..., T], request: object) -> T:
        try:
            return method(request, metadata=self._metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            raise self.explain(error) from None

    def _stream(self, method: Callable[..., Iterable[T]], request: object) -> Iterator[T]:
        try:
            yield from method(request, metadata=self._metadata)
        except grpc.RpcError as error:
            raise self.explain(error) from None

    def submit(
        self,
        pipeline_yaml: str,
        source_name: str,
        env: dict[str, str],
        source: tuple[str, str, str] = ("", "", ""),
        ref: tuple[str, str] = ("", ""),
    ) -> int:
        """`source` is (snapshot sha256, git URL, git ref), `ref` (branch, tag) the source is;
        empty strings when not given."""
        request = control_pb2.SubmitBuildRequest(
            pipeline_yaml=pipeline_yaml,
            source_name=source_name,
            env=env,
            source_sha256=source[0],
            git_url=source[1],
            git_ref=source[2],
            branch=ref[0],
            tag=ref[1],
        )
        return self._call(self._stub.SubmitBuild, request).build_id

    def get_build(self, build_id: int) -> control_pb2.Build:
        return self._call(self._stub.GetBuild, control_pb2.GetBuildRequest(build_id=build_id))

    def list_builds(
        self, limit: int, statuses: Sequence[str] = (), name: str = "", branch: str = ""
    ) -> list[control_pb2.Build]:
        request = control_pb2.ListBuildsRequest(
            limit=limit, statuses=statuses, name=name, branch=branch
        )
        reply = self._call(self._stub.ListBuilds, request)
        return list(reply.builds)

    def watch(
        self, build_id: int, include_logs: bool, resume: dict[tuple[str, int, int], int]
    ) -> Iterator[control_pb2.BuildEvent]:
        offsets = [
            control_pb2.LogOffset(job=job, attempt_number=number, step_index=step, offset=offset)
            for (job, number, step), offset in resume.items()
        ]
        request = control_pb2.WatchBuildRequest(
            build_id=build_id, include_logs=include_logs, resume=offsets
        )
        return self._stream(self._stub.WatchBuild, request)

    def read_logs(self, request: control_pb2.ReadLogsRequest) -> Iterator[control_pb2.LogChunk]:
        return self._stream(self._stub.ReadLogs, request)

    def cancel(self, build_id: int) -> control_pb2.Build:
        return self._call(self._stub.CancelBuild, control_pb2.CancelBuildRequest(build_id=build_id))

    def retry(self, build_id: int, job: str) -> control_pb2.Build:
        request = control_pb2.RetryBuildRequest(build_id=build_id, job=job)
        return self._call(self._stub.RetryBuild, request)

    def decide(self, build_id: int, job: str, comment: str, *, approve: bool) -> control_pb2.Build:
        request = control_pb2.DecideRequest(build_id=build_id, job=job, comment=comment)
        rpc = self._stub.ApproveJob if approve else self._stub.RejectJob
        return self._call(rpc, request)

    def set_agent_mode(self, name: str, mode: str) -> control_pb2.Agent:
        request = control_pb2.SetAgentModeRequest(agent_name=name, mode=mode)
        return self._call(self._stub.SetAgentMode, request)

    def agents(self) -> list[control_pb2.Agent]:
        return list(self._call(self._stub.ListAgents, control_pb2.ListAgentsRequest()).agents)

    def version(self) -> control_pb2.VersionInfo:
        return self._call(self._stub.GetVersion, control_pb2.GetVersionRequest())

    def environments(self) -> list[control_pb2.Environment]:
        request = control_pb2.ListEnvironmentsRequest()
        return list(self._call(self._stub.ListEnvironments, request).environments)

    def deployments(self, environment: str, limit: int) -> control_pb2.ListDeploymentsResponse:
        request = control_pb2.ListDeploymentsRequest(environment=environment, limit=limit)
        return self._call(self._stub.ListDeployments, request)

    def rollback(self, environment: str, to: int | None) -> control_pb2.RollbackResponse:
        request = control_pb2.RollbackRequest(environment=environment)
        if to is not None:
            request.to_deployment = to
        return self._call(self._stub.Rollback, request)

    def delivery_figures(self, environment: str, since_ms: int) -> control_pb2.DeliveryFigures:
        request = control_pb2.DeliveryFiguresRequest(environment=environment, since_ms=since_ms)
        return self._call(self._stub.GetDeliveryFigures, request)

    def create_token(self, name: str, role: str) -> control_pb2.CreateTokenResponse:
        request = control_pb2.CreateTokenRequest(name=name, role=role)
        return self._call(self._stub.CreateToken, request)

    def tokens(self) -> list[control_pb2.Token]:
        return list(self._call(self._stub.ListTokens, control_pb2.ListTokensRequest()).tokens)

    def revoke_token(self, name: str) -> control_pb2.Token:
        return self._call(self._stub.RevokeToken, control_pb2.RevokeTokenRequest(name=name))

    def revoke_agent(self, name: str) -> control_pb2.Agent:
        return self._call(self._stub.RevokeAgent, control_pb2.RevokeAgentRequest(agent_name=name))

    def audit(self, limit: int) -> list[control_pb2.AuditEvent]:
        request = control_pb2.ListAuditRequest(limit=limit)
        return list(self._call(self._stub.ListAudit, request).events)
