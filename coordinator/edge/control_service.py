"""ControlService: the client-facing API; protobuf in and out, the domain API in between."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from conveyor import PROTOCOL_VERSION, __version__, wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from coordinator.domain.access import DEPLOY, MANAGE, READ, RUN, Principal
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.build_filter import build_filter
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.follow import LogQuery
from coordinator.domain.records import BuildRecord
from coordinator.edge.access_convert import audit_event_to_pb, token_to_pb
from coordinator.edge.convert import agent_to_pb, build_to_pb, summary_to_pb
from coordinator.edge.delivery_convert import deployment_to_pb, environment_to_pb, figures_to_pb
from coordinator.edge.errors import Context, abort_for, unary
from coordinator.edge.shared_encoding import SharedEncodings


def client_of(context: Context) -> str:
    """Who holds a stream, for its per-client bound: the caller's address without its port (each
    connection has its own port; the client token is shared, so it names no one)."""
    peer = context.peer() or "unknown"
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rsplit(':', 1)[0]}"
    return peer


class ControlService(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._builds = core.builds
        self._gates = core.gates
        self._agents = core.agents
        self._follow = core.follow
        self._deployments = core.deployments
        self._rollbacks = core.rollbacks
        self._audit = core.audit
        self._encodings = SharedEncodings()

    async def _authorize(self, context: Context, allowed: Sequence[str], action: str) -> Principal:
        """The caller, if its token's role is one of `allowed` (or above) for `action`."""
        token = wire.token_from_metadata(context.invocation_metadata())
        return await self._access.authorize(token, allowed, action)

    @unary
    async def SubmitBuild(
        self, request: control_pb2.SubmitBuildRequest, context: Context
    ) -> control_pb2.SubmitBuildResponse:
        by = await self._authorize(context, RUN, "run builds")
        build_id = await self._builds.submit(
            request.pipeline_yaml,
            source_name=request.source_name,
            env=dict(request.env),
            source=SourceSpec(
                snapshot_sha256=request.source_sha256,
                git_url=request.git_url,
                git_ref=request.git_ref,
            ),
            branch=request.branch,
            tag=request.tag,
            by=by,
        )
        return control_pb2.SubmitBuildResponse(build_id=build_id)

    @unary
    async def GetBuild(
        self, request: control_pb2.GetBuildRequest, context: Context
    ) -> control_pb2.Build:
        await self._authorize(context, READ, "read builds")
        return build_to_pb(await self._builds.get(request.build_id))

    @unary
    async def ListBuilds(
        self, request: control_pb2.ListBuildsRequest, context: Context
    ) -> control_pb2.ListBuildsResponse:
        await self._authorize(context, READ, "read builds")
        only = build_filter(request.statuses, request.name, request.branch)
        builds = await self._builds.list(request.limit, only)
        return control_pb2.ListBuildsResponse(builds=[summary_to_pb(b) for b in builds])

    # Bytes: messages encoded once for every follower (edge/shared_encoding.py sends them).
    async def WatchBuild(  # type: ignore[override]
        self, request: control_pb2.WatchBuildRequest, context: Context
    ) -> AsyncIterator[control_pb2.BuildEvent | bytes]:
        try:
            await self._authorize(context, READ, "read builds")
            resume = {(r.job, r.attempt_number, r.step_index): r.offset for r in request.resume}
            with self._follow.streams.open(client_of(context)):
                watch = self._follow.watch(request.build_id, request.include_logs, resume)
                async for item in watch:
                    if isinstance(item, BuildRecord):
                        yield self._encodings.snapshot_event(item)
                    else:
                        yield self._encodings.log_event(item)
        except Exception as error:
            await abort_for(error, context)

    # Bytes: messages encoded once for every follower (edge/shared_encoding.py sends them).
    async def ReadLogs(  # type: ignore[override]
        self, request: control_pb2.ReadLogsRequest, context: Context
    ) -> AsyncIterator[control_pb2.LogChunk | bytes]:
        try:
            await self._authorize(context, READ, "read logs")
            query = LogQuery(
                request.build_id,
                request.job,
                request.step,
                request.attempt_number,
                request.follow,
                request.from_step,
                request.from_offset,
            )
            with self._follow.streams.open(client_of(context)):
                async for chunk in self._follow.read(query):
                    yield self._encodings.log_chunk(chunk)
        except Exception as error:
            await abort_for(error, context)

    @unary
    async def CancelBuild(
        self, request: control_pb2.CancelBuildRequest, context: Context
    ) -> control_pb2.Build:
        by = await self._authorize(context, RUN, f"cancel build {request.build_id}")
        return build_to_pb(await self._builds.cancel(request.build_id, by))

    @unary
    async def RetryBuild(
        self, request: control_pb2.RetryBuildRequest, context: Context
    ) -> control_pb2.Build:
        by = await self._authorize(context, RUN, f"retry build {request.build_id}")
        return build_to_pb(await self._builds.retry(request.build_id, request.job or None, by))

    @unary
    async def ApproveJob(
        self, request: control_pb2.DecideRequest, context: Context
    ) -> control_pb2.Build:
        return await self._decide(request, context, approve=True)

    @unary
    async def RejectJob(
        self, request: control_pb2.DecideRequest, context: Context
    ) -> control_pb2.Build:
        return await self._decide(request, context, approve=False)

    async def _decide(
        self, request: control_pb2.DecideRequest, context: Context, *, approve: bool
    ) -> control_pb2.Build:
        # Reading is enough to ask: the gate's own `roles` (default deployer) decide who may.
        principal = await self._authorize(context, READ, "decide approval gates")
        build = await self._gates.decide(
            request.build_id,
            request.job,
            approve=approve,
            comment=request.comment,
            principal=principal,
        )
        return build_to_pb(build)

    @unary
    async def ListAgents(
        self, request: control_pb2.ListAgentsRequest, context: Context
    ) -> control_pb2.ListAgentsResponse:
        await self._authorize(context, READ, "list agents")
        agents = await self._agents.list()
        return control_pb2.ListAgentsResponse(agents=[agent_to_pb(a) for a in agents])

    @unary
    async def SetAgentMode(
        self, request: control_pb2.SetAgentModeRequest, context: Context
    ) -> control_pb2.Agent:
        action = f"set agent {request.agent_name!r} {request.mode or 'active'}"
        by = await self._authorize(context, MANAGE, action)
        return agent_to_pb(await self._agents.set_mode(request.agent_name, request.mode, by))

    @unary
    async def ListEnvironments(
        self, request: control_pb2.ListEnvironmentsRequest, context: Context
    ) -> control_pb2.ListEnvironmentsResponse:
        await self._authorize(context, READ, "list environments")
        environments = await self._deployments.environments()
        return control_pb2.ListEnvironmentsResponse(
            environments=[environment_to_pb(e) for e in environments]
        )

    @unary
    async def ListDeployments(
        self, request: control_pb2.ListDeploymentsRequest, context: Context
    ) -> control_pb2.ListDeploymentsResponse:
        await self._authorize(context, READ, "list deployments")
        deployments = await self._deployments.of(request.environment, request.limit)
        return control_pb2.ListDeploymentsResponse(
            environment=request.environment,
            deployments=[deployment_to_pb(d) for d in deployments],
        )

    @unary
    async def GetDeliveryFigures(
        self, request: control_pb2.DeliveryFiguresRequest, context: Context
    ) -> control_pb2.DeliveryFigures:
        await self._authorize(context, READ, "read delivery figures")
        figures = await self._deployments.figures(request.environment or None, request.since_ms)
        return figures_to_pb(figures)

    @unary
    async def Rollback(
        self, request: control_pb2.RollbackRequest, context: Context
    ) -> control_pb2.RollbackResponse:
        principal = await self._authorize(context, DEPLOY, f"roll back {request.environment}")
        to = request.to_deployment if request.HasField("to_deployment") else None
        started = await self._rollbacks.start(request.environment, to, principal)
        return control_pb2.RollbackResponse(build_id=started.build_id, redeploys=started.redeploys)

    @unary
    async def CreateToken(
        self, request: control_pb2.CreateTokenRequest, context: Context
    ) -> control_pb2.CreateTokenResponse:
        by = await self._authorize(context, MANAGE, "create tokens")
        token, secret = await self._access.create_token(by, request.name, request.role)
        return control_pb2.CreateTokenResponse(token=token_to_pb(token), secret=secret)

    @unary
    async def ListTokens(
        self, request: control_pb2.ListTokensRequest, context: Context
    ) -> control_pb2.ListTokensResponse:
        await self._authorize(context, MANAGE, "list tokens")
        tokens = await self._access.tokens()
        return control_pb2.ListTokensResponse(tokens=[token_to_pb(t) for t in tokens])

    @unary
    async def RevokeToken(
        self, request: control_pb2.RevokeTokenRequest, context: Context
    ) -> control_pb2.Token:
        by = await self._authorize(context, MANAGE, "revoke tokens")
        return token_to_pb(await self._access.revoke_token(by, request.name))

    @unary
    async def RevokeAgent(
        self, request: control_pb2.RevokeAgentRequest, context: Context
    ) -> control_pb2.Agent:
        by = await self._authorize(context, MANAGE, f"revoke agent {request.agent_name!r}")
        return agent_to_pb(await self._agents.revoke(request.agent_name, by))

    @unary
    async def ListAudit(
        self, request: control_pb2.ListAuditRequest, context: Context
    ) -> control_pb2.ListAuditResponse:
        await self._authorize(context, READ, "read the audit trail")
        events = await self._audit.events(request.limit)
        return control_pb2.ListAuditResponse(events=[audit_event_to_pb(e) for e in events])

    @unary
    async def GetVersion(
        self, request: control_pb2.GetVersionRequest, context: Context
    ) -> control_pb2.VersionInfo:
        await self._authorize(context, READ, "read the version")
        return control_pb2.VersionInfo(version=__version__, protocol_version=PROTOCOL_VERSION)


__all__ = ["ControlService"]
