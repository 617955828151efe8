"""ControlService: the client-facing API; protobuf in and out, the domain API in between."""

from __future__ import annotations

from collections.abc import AsyncIterator

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from coordinator.config import DEFAULT_LIST_LIMIT
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.follow import LogQuery, read_logs, watch_build
from coordinator.domain.records import BuildRecord
from coordinator.edge.convert import agent_to_pb, build_to_pb
from coordinator.edge.errors import Context, abort_for, unary
from coordinator.store.artifacts import SourceSpec

MAX_LIST_LIMIT = 1000


def _listing(build: BuildRecord) -> control_pb2.Build:
    return build_to_pb(build)


class ControlService(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._core = core

    def _authorize(self, context: Context) -> None:
        self._core.check_client_token(wire.token_from_metadata(context.invocation_metadata()))

    @unary
    async def SubmitBuild(
        self, request: control_pb2.SubmitBuildRequest, context: Context
    ) -> control_pb2.SubmitBuildResponse:
        self._authorize(context)
        source = None
        if request.source_sha256 or request.git_url:
            source = SourceSpec(
                snapshot_sha256=request.source_sha256,
                git_url=request.git_url,
                git_ref=request.git_ref or "HEAD",
            )
        build_id = await self._core.submit(
            request.pipeline_yaml, request.source_name or "pipeline.yml", dict(request.env), source
        )
        return control_pb2.SubmitBuildResponse(build_id=build_id)

    @unary
    async def GetBuild(
        self, request: control_pb2.GetBuildRequest, context: Context
    ) -> control_pb2.Build:
        self._authorize(context)
        return build_to_pb(await self._core.get_build(request.build_id))

    @unary
    async def ListBuilds(
        self, request: control_pb2.ListBuildsRequest, context: Context
    ) -> control_pb2.ListBuildsResponse:
        self._authorize(context)
        limit = min(request.limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        builds = await self._core.list_builds(limit)
        return control_pb2.ListBuildsResponse(builds=[_listing(b) for b in builds])

    async def WatchBuild(
        self, request: control_pb2.WatchBuildRequest, context: Context
    ) -> AsyncIterator[control_pb2.BuildEvent]:
        try:
            self._authorize(context)
            resume = {(r.job, r.attempt_number, r.step_index): r.offset for r in request.resume}
            items = watch_build(self._core, request.build_id, request.include_logs, resume)
            async for item in items:
                if isinstance(item, BuildRecord):
                    yield control_pb2.BuildEvent(snapshot=build_to_pb(item))
                    continue
                job, attempt, step, offset, data = item
                yield control_pb2.BuildEvent(
                    log=control_pb2.LogChunk(
                        job=job.name,
                        attempt_number=attempt.number,
                        step_index=step.index,
                        step_name=step.name,
                        offset=offset,
                        data=data,
                    )
                )
        except Exception as error:
            await abort_for(error, context)

    async def ReadLogs(
        self, request: control_pb2.ReadLogsRequest, context: Context
    ) -> AsyncIterator[control_pb2.LogChunk]:
        try:
            self._authorize(context)
            query = LogQuery(
                request.build_id,
                request.job,
                request.step,
                request.attempt_number,
                request.follow,
                request.from_step,
                request.from_offset,
            )
            chunks = read_logs(self._core, query)
            async for attempt, step, offset, data in chunks:
                yield control_pb2.LogChunk(
                    job=request.job,
                    attempt_number=attempt.number,
                    step_index=step.index,
                    step_name=step.name,
                    offset=offset,
                    data=data,
                )
        except Exception as error:
            await abort_for(error, context)

    @unary
    async def CancelBuild(
        self, request: control_pb2.CancelBuildRequest, context: Context
    ) -> control_pb2.Build:
        self._authorize(context)
        return build_to_pb(await self._core.cancel(request.build_id))

    @unary
    async def RetryBuild(
        self, request: control_pb2.RetryBuildRequest, context: Context
    ) -> control_pb2.Build:
        self._authorize(context)
        return build_to_pb(await self._core.retry(request.build_id, request.job or None))

    @unary
    async def ListAgents(
        self, request: control_pb2.ListAgentsRequest, context: Context
    ) -> control_pb2.ListAgentsResponse:
        self._authorize(context)
        agents = await self._core.list_agents()
        return control_pb2.ListAgentsResponse(agents=[agent_to_pb(a, st) for a, st in agents])

    @unary
    async def SetAgentMode(
        self, request: control_pb2.SetAgentModeRequest, context: Context
    ) -> control_pb2.Agent:
        self._authorize(context)
        record, state = await self._core.set_agent_mode(request.agent_name, request.mode)
        return agent_to_pb(record, state)
