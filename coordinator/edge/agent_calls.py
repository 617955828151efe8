"""The per-event agent calls, one body each, whichever way they arrive: as unary calls or as
requests on the agent's session stream. Both paths call these, so checks, fencing, offsets,
idempotence and errors cannot differ between them."""

from __future__ import annotations

from conveyor import wire
from conveyor.states import Outcome
from conveyor.v1 import agent_pb2
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.records import StepEnd
from coordinator.domain.registry import AgentSession
from coordinator.edge.convert import LEASE_STATES


def _outcome(value: int) -> Outcome:
    outcome = wire.outcome_from_pb(value)
    if outcome is None:
        raise ValueError("outcome must be set")
    return outcome


def _step_end(request: agent_pb2.FinishStepRequest) -> StepEnd:
    return StepEnd(
        request.step_index,
        _outcome(request.outcome),
        request.exit_code if request.has_exit_code else None,
        request.log_lost_bytes,
    )


class AgentCalls:
    """Each method: the request of the agent `agent` (already authenticated), its response."""

    def __init__(self, core: Coordinator) -> None:
        self._agents = core.agents
        self._attempts = core.attempts

    async def renew_leases(
        self, agent: AgentSession, request: agent_pb2.RenewLeasesRequest
    ) -> agent_pb2.RenewLeasesResponse:
        states = self._agents.renew(
            agent, [(lease.attempt_id, lease.lease_token) for lease in request.leases]
        )
        return agent_pb2.RenewLeasesResponse(
            leases=[agent_pb2.LeaseStatus(attempt_id=i, state=LEASE_STATES[s]) for i, s in states]
        )

    async def start_step(
        self, agent: AgentSession, request: agent_pb2.StartStepRequest
    ) -> agent_pb2.StartStepResponse:
        lease = request.lease
        cancel = await self._attempts.start_step(
            agent, lease.attempt_id, lease.lease_token, request.step_index
        )
        return agent_pb2.StartStepResponse(cancel_requested=cancel)

    async def append_log(
        self, agent: AgentSession, request: agent_pb2.AppendLogRequest
    ) -> agent_pb2.AppendLogResponse:
        lease = request.lease
        held, accepted = await self._attempts.append_log(
            agent,
            lease.attempt_id,
            lease.lease_token,
            request.step_index,
            request.offset,
            request.data,
        )
        return agent_pb2.AppendLogResponse(held_length=held, accepted=accepted)

    async def finish_step(
        self, agent: AgentSession, request: agent_pb2.FinishStepRequest
    ) -> agent_pb2.FinishStepResponse:
        lease, end = request.lease, _step_end(request)
        await self._attempts.finish_step(
            agent,
            lease.attempt_id,
            lease.lease_token,
            end.index,
            outcome=end.outcome,
            exit_code=end.exit_code,
            log_lost_bytes=end.log_lost_bytes,
        )
        return agent_pb2.FinishStepResponse()

    async def finish_attempt(
        self, agent: AgentSession, request: agent_pb2.FinishAttemptRequest
    ) -> agent_pb2.FinishAttemptResponse:
        lease = request.lease
        last = request.last_step if request.HasField("last_step") else None
        recorded = await self._attempts.finish(
            agent,
            lease.attempt_id,
            lease.lease_token,
            outcome=_outcome(request.outcome),
            reason=request.reason,
            message=request.message,
            exit_code=request.exit_code if request.has_exit_code else None,
            last_step=None if last is None else _step_end(last),
        )
        return agent_pb2.FinishAttemptResponse(
            recorded_outcome=wire.outcome_to_pb(recorded.outcome), recorded_reason=recorded.reason
        )


__all__ = ["AgentCalls"]
