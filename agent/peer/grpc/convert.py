"""Protobuf messages to and from the agent's domain types; nothing else happens here."""

from __future__ import annotations

from agent.peer.types import (
    ArtifactFile,
    Assignment,
    GitSource,
    Inputs,
    Lease,
    LeaseState,
    LeaseStatus,
    NeededArtifact,
    Recorded,
    Snapshot,
    StepReport,
    StepSpec,
    Verdict,
    Work,
)
from conveyor import wire
from conveyor.v1 import agent_pb2, blobs_pb2, types_pb2

_LEASE_STATES = {
    agent_pb2.LEASE_STATE_ACTIVE: LeaseState.ACTIVE,
    agent_pb2.LEASE_STATE_CANCEL: LeaseState.CANCEL,
    agent_pb2.LEASE_STATE_LOST: LeaseState.LOST,
}


def _seconds(ms: int) -> float | None:
    return ms / 1000 if ms else None


def lease_to_pb(lease: Lease) -> types_pb2.Lease:
    return types_pb2.Lease(attempt_id=lease.attempt_id, lease_token=lease.token)


def lease_from_pb(lease: types_pb2.Lease) -> Lease:
    return Lease(lease.attempt_id, lease.lease_token)


def _step_from_pb(step: agent_pb2.StepSpec) -> StepSpec:
    return StepSpec(
        step.name, step.image, step.run, dict(step.env), _seconds(step.timeout_ms), step.user
    )


def _assignment_from_pb(assignment: agent_pb2.Assignment) -> Assignment:
    return Assignment(
        lease=lease_from_pb(assignment.lease),
        build_id=assignment.build_id,
        job_name=assignment.job_name,
        attempt_number=assignment.attempt_number,
        steps=tuple(_step_from_pb(step) for step in assignment.steps),
        timeout_s=_seconds(assignment.timeout_ms),
        secrets=dict(assignment.secrets),
        privileged=assignment.privileged,
        # A coordinator older than these fields sends none: its builds were all manual.
        event=assignment.event or "manual",
        branch=assignment.branch,
        tag=assignment.tag,
        environment=assignment.environment,
        inputs=inputs_from_pb(assignment.inputs) if assignment.HasField("inputs") else None,
    )


def work_from_pb(reply: agent_pb2.PollWorkResponse) -> Work:
    return Work(
        assignments=tuple(_assignment_from_pb(a) for a in reply.assignments),
        cancel_attempt_ids=tuple(reply.cancel_attempt_ids),
        drain=reply.drain,
    )


def lease_status_from_pb(status: agent_pb2.LeaseStatus) -> LeaseStatus:
    # An unknown state is treated as active: the lease was renewed, nothing else is known.
    return LeaseStatus(status.attempt_id, _LEASE_STATES.get(status.state, LeaseState.ACTIVE))


def finish_step_to_pb(lease: Lease, report: StepReport) -> agent_pb2.FinishStepRequest:
    verdict = report.verdict
    return agent_pb2.FinishStepRequest(
        lease=lease_to_pb(lease),
        step_index=report.index,
        outcome=wire.outcome_to_pb(verdict.outcome),
        exit_code=report.exit_code or 0,
        has_exit_code=report.exit_code is not None,
        reason=verdict.reason,
        message=verdict.message,
        log_length=report.log_length,
        log_lost_bytes=report.log_lost_bytes,
    )


def finish_attempt_to_pb(lease: Lease, verdict: Verdict) -> agent_pb2.FinishAttemptRequest:
    return agent_pb2.FinishAttemptRequest(
        lease=lease_to_pb(lease),
        outcome=wire.outcome_to_pb(verdict.outcome),
        reason=verdict.reason,
        message=verdict.message,
        exit_code=verdict.exit_code or 0,
        has_exit_code=verdict.exit_code is not None,
    )


def recorded_from_pb(reply: agent_pb2.FinishAttemptResponse) -> Recorded:
    return Recorded(wire.outcome_from_pb(reply.recorded_outcome), reply.recorded_reason)


def inputs_from_pb(reply: blobs_pb2.GetInputsResponse) -> Inputs:
    source: Snapshot | GitSource | None = None
    kind = reply.WhichOneof("source")
    if kind == "snapshot_sha256":
        source = Snapshot(reply.snapshot_sha256, reply.snapshot_size)
    elif kind == "git":
        source = GitSource(reply.git.url, reply.git.ref, reply.git.commit)
    needed = tuple(NeededArtifact(a.job, a.name, a.size, a.sha256, a.mode) for a in reply.needed)
    return Inputs(source, needed, tuple(reply.artifact_paths), reply.artifacts_always)


def upload_header_to_pb(lease: Lease, artifact: ArtifactFile) -> blobs_pb2.UploadHeader:
    return blobs_pb2.UploadHeader(
        lease=lease_to_pb(lease), name=artifact.name, size=artifact.size, mode=artifact.mode
    )
