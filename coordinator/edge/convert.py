"""Domain records to protobuf messages: the gRPC edge's translation of outgoing data."""

from __future__ import annotations

from conveyor import wire
from conveyor.v1 import agent_pb2, blobs_pb2, control_pb2, types_pb2
from coordinator.domain.agents import AgentStatus
from coordinator.domain.artifact_records import ArtifactRecord, SourceSpec
from coordinator.domain.artifacts import AttemptInputs, attempt_inputs
from coordinator.domain.follow import LogChunk
from coordinator.domain.leases import LeaseState
from coordinator.domain.records import (
    ApprovalRecord,
    Assignment,
    AttemptRecord,
    BuildRecord,
    BuildSummary,
    JobRecord,
    StepRecord,
    Trigger,
)

LEASE_STATES = {
    LeaseState.ACTIVE: agent_pb2.LEASE_STATE_ACTIVE,
    LeaseState.CANCEL: agent_pb2.LEASE_STATE_CANCEL,
    LeaseState.LOST: agent_pb2.LEASE_STATE_LOST,
}


def _ms(seconds: float | None) -> int:
    return int(seconds * 1000) if seconds else 0


def assignment_to_pb(assignment: Assignment) -> agent_pb2.Assignment:
    ready = None if assignment.inputs is None else attempt_inputs(assignment.inputs)
    return agent_pb2.Assignment(
        lease=types_pb2.Lease(attempt_id=assignment.attempt_id, lease_token=assignment.lease_token),
        build_id=assignment.build_id,
        job_name=assignment.job_name,
        attempt_number=assignment.attempt_number,
        steps=[
            agent_pb2.StepSpec(
                name=s.name,
                image=s.image,
                run=s.run,
                env=s.env,
                timeout_ms=_ms(s.timeout_s),
                user=s.user,
            )
            for s in assignment.spec.steps
        ],
        timeout_ms=_ms(assignment.spec.timeout_s),
        secrets=dict(assignment.secrets),
        privileged=assignment.spec.privileged,
        event=assignment.context.event,
        branch=assignment.context.branch,
        tag=assignment.context.tag,
        environment=assignment.context.environment,
        inputs=None if ready is None else inputs_to_pb(ready),
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
        approval=_approval_to_pb(job.approval),
    )


def _approval_to_pb(approval: ApprovalRecord | None) -> control_pb2.Approval | None:
    if approval is None:
        return None
    return control_pb2.Approval(
        prompt=approval.prompt,
        decision=approval.decision,
        by=approval.by,
        at_ms=approval.at_ms or 0,
        comment=approval.comment,
        roles=list(approval.roles),
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
        job_count=len(build.jobs),
        context=_context_to_pb(build.event, build.branch, build.tag, build.redeploys),
        started_by=build.started_by,
        trigger=trigger_to_pb(build.trigger),
        error=build.error or "",
    )


def trigger_to_pb(trigger: Trigger | None) -> control_pb2.BuildTrigger | None:
    if trigger is None:
        return None
    message = control_pb2.BuildTrigger(
        event=trigger.event,
        repo=trigger.repo,
        branch=trigger.branch or "",
        tag=trigger.tag or "",
        commit=trigger.commit,
        message=trigger.message,
        author=trigger.author,
    )
    if trigger.committed_at_ms is not None:
        message.committed_at_ms = trigger.committed_at_ms
    return message


def _context_to_pb(
    event: str, branch: str | None, tag: str | None, redeploys: int | None
) -> control_pb2.BuildContext:
    context = control_pb2.BuildContext(event=event, branch=branch or "", tag=tag or "")
    if redeploys is not None:
        context.redeploys = redeploys
    return context


def summary_to_pb(build: BuildSummary) -> control_pb2.Build:
    return control_pb2.Build(
        id=build.id,
        name=build.name,
        status=wire.build_status_to_pb(build.status),
        created_at_ms=build.created_at_ms,
        finished_at_ms=build.finished_at_ms or 0,
        cancel_requested=build.cancel_requested,
        job_count=build.job_count,
        context=_context_to_pb(build.event, build.branch, build.tag, build.redeploys),
        started_by=build.started_by,
        trigger=trigger_to_pb(build.trigger),
        error=build.error or "",
    )


def agent_to_pb(status: AgentStatus) -> control_pb2.Agent:
    agent = status.record
    return control_pb2.Agent(
        id=agent.id,
        name=agent.name,
        labels=agent.labels,
        capacity=agent.capacity,
        running=agent.running,
        state=status.state,
        last_seen_ms=agent.last_seen_ms,
    )


def log_chunk_to_pb(chunk: LogChunk) -> control_pb2.LogChunk:
    return control_pb2.LogChunk(
        job=chunk.job,
        attempt_number=chunk.attempt_number,
        step_index=chunk.step_index,
        step_name=chunk.step_name,
        offset=chunk.offset,
        data=chunk.data,
    )


def artifact_to_pb(record: ArtifactRecord) -> blobs_pb2.Artifact:
    return blobs_pb2.Artifact(
        job=record.job,
        name=record.name,
        size=record.size,
        sha256=record.sha256,
        mode=record.mode,
        attempt_number=record.attempt_number,
    )


def git_source_to_pb(source: SourceSpec) -> blobs_pb2.GitSource:
    return blobs_pb2.GitSource(url=source.git_url, ref=source.git_ref, commit=source.git_commit)


def inputs_to_pb(found: AttemptInputs) -> blobs_pb2.GetInputsResponse:
    reply = blobs_pb2.GetInputsResponse(
        needed=[artifact_to_pb(a) for a in found.needed],
        artifact_paths=list(found.artifact_paths),
        artifacts_always=found.artifacts_always,
    )
    source = found.source
    if source is not None and source.snapshot_sha256:
        reply.snapshot_sha256 = source.snapshot_sha256
        reply.snapshot_size = found.snapshot_size
    elif source is not None and source.git_url:
        reply.git.CopyFrom(git_source_to_pb(source))
    return reply


def artifacts_to_pb(
    artifacts: list[ArtifactRecord], source: SourceSpec | None
) -> blobs_pb2.ListArtifactsResponse:
    reply = blobs_pb2.ListArtifactsResponse(artifacts=[artifact_to_pb(a) for a in artifacts])
    if source is not None and source.git_url:
        reply.git.CopyFrom(git_source_to_pb(source))
    elif source is not None:
        reply.snapshot_sha256 = source.snapshot_sha256
    return reply
