"""AgentService: translates between protobuf and the coordinator's domain API, nothing more."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from conveyor import wire
from conveyor.states import Outcome, Reason
from conveyor.v1 import agent_pb2, agent_pb2_grpc
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.records import Assignment
from coordinator.domain.registry import AgentSession
from coordinator.edge.agent_calls import AgentCalls
from coordinator.edge.agent_stream import SessionStream
from coordinator.edge.convert import assignment_to_pb
from coordinator.edge.errors import Context, abort_for, unary

LOGGER = logging.getLogger(__name__)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._agents = core.agents
        self._attempts = core.attempts
        self._metrics = core.metrics
        self.calls = AgentCalls(core)
        self._streams: set[SessionStream] = set()
        self._closing = False

    def end_streams(self) -> None:
        """The server is stopping: open session streams end once their requests in hand are
        answered, and new ones are refused UNAVAILABLE (the agent retries elsewhere or later).
        A stream would otherwise hold the server's stop for its whole grace period."""
        self._closing = True
        for stream in list(self._streams):
            stream.end()

    def _agent(self, context: Context) -> AgentSession:
        return self._agents.session(wire.token_from_metadata(context.invocation_metadata()))

    @unary
    async def Register(
        self, request: agent_pb2.RegisterRequest, context: Context
    ) -> agent_pb2.RegisterResponse:
        registration = await self._agents.register(
            join_token=request.join_token,
            name=request.name,
            labels=dict(request.labels),
            capacity=request.capacity,
            protocol_version=request.protocol_version,
            running=[(lease.attempt_id, lease.lease_token) for lease in request.running],
            agent_credential=request.agent_credential,
            new_process=request.new_process,
        )
        return agent_pb2.RegisterResponse(
            agent_id=registration.agent.id,
            session_token=registration.session_token,
            lease_ttl_ms=int(registration.lease_ttl_s * 1000),
            renew_interval_ms=int(registration.renew_interval_s * 1000),
            poll_timeout_ms=int(registration.poll_timeout_s * 1000),
            agent_credential=registration.agent_credential,
            mode=registration.agent.mode,
            finish_takes_last_step=True,
        )

    @unary
    async def SignOff(
        self, request: agent_pb2.SignOffRequest, context: Context
    ) -> agent_pb2.SignOffResponse:
        await self._agents.sign_off(self._agent(context))
        return agent_pb2.SignOffResponse()

    @unary
    async def PollWork(
        self, request: agent_pb2.PollWorkRequest, context: Context
    ) -> agent_pb2.PollWorkResponse:
        result = await self._agents.poll(
            self._agent(context), request.free_slots, request.draining, request.held
        )
        assignments = []
        for assignment in result.assignments:
            converted = await self._deliverable(assignment)
            if converted is not None:
                assignments.append(converted)
        return agent_pb2.PollWorkResponse(
            assignments=assignments,
            cancel_attempt_ids=result.cancel_attempt_ids,
            drain=result.drain,
        )

    async def _deliverable(self, assignment: Assignment) -> agent_pb2.Assignment | None:
        """The assignment as sent; one that cannot be encoded fails its attempt (logged) and is
        left out, so it neither fails the poll nor comes back to blame the agent."""
        try:
            return assignment_to_pb(assignment)
        except (ValueError, TypeError) as error:  # UnicodeEncodeError is a ValueError
            LOGGER.error(
                "attempt %d (build %d, job %s) cannot be encoded for an agent: %s",
                assignment.attempt_id,
                assignment.build_id,
                assignment.job_name,
                error,
            )
            await self._attempts.end(
                assignment.attempt_id,
                outcome=Outcome.FAILED,
                reason=Reason.ERROR,
                message=f"the job cannot be sent to an agent: {error}",
                exit_code=None,
            )
            return None

    @unary
    async def RenewLeases(
        self, request: agent_pb2.RenewLeasesRequest, context: Context
    ) -> agent_pb2.RenewLeasesResponse:
        return await self.calls.renew_leases(self._unary(context, "RenewLeases"), request)

    @unary
    async def StartStep(
        self, request: agent_pb2.StartStepRequest, context: Context
    ) -> agent_pb2.StartStepResponse:
        return await self.calls.start_step(self._unary(context, "StartStep"), request)

    @unary
    async def AppendLog(
        self, request: agent_pb2.AppendLogRequest, context: Context
    ) -> agent_pb2.AppendLogResponse:
        return await self.calls.append_log(self._unary(context, "AppendLog"), request)

    @unary
    async def FinishStep(
        self, request: agent_pb2.FinishStepRequest, context: Context
    ) -> agent_pb2.FinishStepResponse:
        return await self.calls.finish_step(self._unary(context, "FinishStep"), request)

    @unary
    async def FinishAttempt(
        self, request: agent_pb2.FinishAttemptRequest, context: Context
    ) -> agent_pb2.FinishAttemptResponse:
        return await self.calls.finish_attempt(self._unary(context, "FinishAttempt"), request)

    async def Session(
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: Context
    ) -> AsyncIterator[agent_pb2.CoordinatorMessage]:
        token = wire.token_from_metadata(context.invocation_metadata())
        try:
            self._agents.session(token)  # a stream without a live session is refused whole
        except Exception as error:
            await abort_for(error, context)
        if self._closing:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the coordinator is stopping")
        stream = SessionStream(self.calls, self._agents.session, self._metrics, token)
        self._streams.add(stream)
        try:
            async for reply in stream.replies(request_iterator):
                yield reply
        finally:
            self._streams.discard(stream)

    def _unary(self, context: Context, call: str) -> AgentSession:
        self._metrics.agent_request(call, "unary")
        return self._agent(context)


__all__ = ["AgentService"]
