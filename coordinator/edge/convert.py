"""Records to protobuf messages (the gRPC edge's only translation code for outgoing data)."""

from __future__ import annotations

from conveyor import wire
from conveyor.v1 import agent_pb2, control_pb2, types_pb2
from coordinator.domain.records import (
    AgentRecord,
    Assignment,
    AttemptRecord,
    BuildRecord,
    JobRecord,
    StepRecord,
)


def _ms(seconds: float | None) -> int:
    return int(seconds * 1000) if seconds else 0


def assignment_to_pb(assignment: Assignment) -> agent_pb2.Assignment:
    return agent_pb2.Assignment(
        lease=types_pb2.Lease(attempt_id=assignment.attempt_id, lease_token=assignment.lease_token),
        build_id=assignment.build_id,
        job_name=assignment.job_name,
        attempt_number=assignment.attempt_number,
        steps=[
            agent_pb2.StepSpec(
                name=s.name, image=s.image, run=s.run, env=s.env, timeout_ms=_ms(s.timeout_s)
            )
            for s in assignment.spec.steps
        ],
        timeout_ms=_ms(assignment.spec.timeout_s),
    )


def step_to_pb(step: StepRecord) -> control_pb2.Step:
    return control_pb2.Step(
        index=step.index,
        name=step.name,
        status=wire.step_status_to_pb(step.status),
        exit_code=step.exit_code or 0,
        has_exit_code=step.exit_code is not None,
        started_at_ms=step.started_at_ms or 0,
        finished_at_ms=step.finished_at_ms or 0,
        log_length=step.log_length,
        log_lost_bytes=step.log_lost_bytes,
    )


def attempt_to_pb(attempt: AttemptRecord) -> control_pb2.Attempt:
    return control_pb2.Attempt(
        id=attempt.id,
        number=attempt.number,
        agent_name=attempt.agent_name,
        outcome=wire.outcome_to_pb(attempt.outcome),
        exit_code=attempt.exit_code or 0,
        has_exit_code=attempt.exit_code is not None,
        reason=attempt.reason,
        message=attempt.message,
        started_at_ms=attempt.started_at_ms,
        finished_at_ms=attempt.finished_at_ms or 0,
        steps=[step_to_pb(step) for step in attempt.steps],
    )


def job_to_pb(job: JobRecord) -> control_pb2.Job:
    return control_pb2.Job(
        name=job.name,
        status=wire.job_status_to_pb(job.status),
        needs=list(job.needs),
        labels=job.labels,
        exit_code=job.exit_code or 0,
        has_exit_code=job.exit_code is not None,
        reason=job.reason,
        message=job.message,
        attempts=[attempt_to_pb(attempt) for attempt in job.attempts],
        step_names=list(job.step_names),
    )


def build_to_pb(build: BuildRecord) -> control_pb2.Build:
    return control_pb2.Build(
        id=build.id,
        name=build.name,
        status=wire.build_status_to_pb(build.status),
        created_at_ms=build.created_at_ms,
        finished_at_ms=build.finished_at_ms or 0,
        jobs=[job_to_pb(job) for job in build.jobs],
        cancel_requested=build.cancel_requested,
    )


def agent_to_pb(agent: AgentRecord, state: str) -> control_pb2.Agent:
    return control_pb2.Agent(
        id=agent.id,
        name=agent.name,
        labels=agent.labels,
        capacity=agent.capacity,
        running=agent.running,
        state=state,
        last_seen_ms=agent.last_seen_ms,
    )
