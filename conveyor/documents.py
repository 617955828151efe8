"""The JSON documents of DESIGN §8, from protobuf messages: what `--json` prints and what the
HTTP API answers, made by the same functions so the two can never drift apart. Each time is
carried twice: `NAME_ms` (epoch milliseconds) and `NAME` (ISO 8601, UTC), see conveyor.times."""

from __future__ import annotations

from typing import Any, TypedDict

from conveyor import wire
from conveyor.times import iso_utc, with_times
from conveyor.v1 import control_pb2


def job_doc(job: control_pb2.Job) -> dict[str, Any]:
    return with_times(_job_fields(job))


def _job_fields(job: control_pb2.Job) -> dict[str, Any]:
    latest = job.attempts[-1] if job.attempts else None
    return {
        "name": job.name,
        "status": wire.job_status_from_pb(job.status).value,
        "needs": list(job.needs),
        "attempts": len(job.attempts),
        "exit_code": job.exit_code if job.has_exit_code else None,
        "reason": job.reason or None,
        "message": job.message or None,
        "agent": latest.agent_name if latest else None,
        "steps": [
            {
                "name": step.name,
                "status": wire.step_status_from_pb(step.status).value,
                "exit_code": step.exit_code if step.has_exit_code else None,
                "started_at_ms": step.started_at_ms or None,
                "finished_at_ms": step.finished_at_ms or None,
                "log_bytes": step.log_length,
                "log_lost_bytes": step.log_lost_bytes,
            }
            for step in (latest.steps if latest else [])
        ],
    }


def _with_approval(doc: dict[str, Any], job: control_pb2.Job) -> dict[str, Any]:
    if not job.HasField("approval"):
        return doc
    approval = job.approval
    doc["approval"] = {
        "prompt": approval.prompt,
        "decision": approval.decision or None,
        "by": approval.by or None,
        "at_ms": approval.at_ms or None,
        "comment": approval.comment or None,
        "roles": list(approval.roles),
    }
    return doc


def build_doc(build: control_pb2.Build) -> dict[str, Any]:
    return with_times(_build_fields(build))


def _build_fields(build: control_pb2.Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "name": build.name,
        "status": wire.build_status_from_pb(build.status).value,
        "created_at_ms": build.created_at_ms,
        "finished_at_ms": build.finished_at_ms or None,
        "event": build.context.event or None,
        "branch": build.context.branch or None,
        "tag": build.context.tag or None,
        "redeploys": build.context.redeploys if build.context.HasField("redeploys") else None,
        "started_by": build.started_by or None,
        "trigger": trigger_doc(build),
        "error": build.error or None,
        "jobs": [_with_approval(_job_fields(job), job) for job in build.jobs],
    }


def trigger_doc(build: control_pb2.Build) -> dict[str, Any] | None:
    """What started a build from a watched repository; None for every other build."""
    if not build.HasField("trigger"):
        return None
    trigger = build.trigger
    return {
        "event": trigger.event,
        "repo": trigger.repo,
        "branch": trigger.branch or None,
        "tag": trigger.tag or None,
        "commit": trigger.commit,
        "committed_at_ms": (
            trigger.committed_at_ms if trigger.HasField("committed_at_ms") else None
        ),
        "message": trigger.message,
        "author": trigger.author,
    }


def build_summary_doc(build: control_pb2.Build) -> dict[str, Any]:
    """A build as `conveyor builds --json` lists it: the build document without `jobs`."""
    doc = build_doc(build)
    del doc["jobs"]
    return doc


def agent_doc(agent: control_pb2.Agent) -> dict[str, Any]:
    return with_times(
        {
            "id": agent.id,
            "name": agent.name,
            "labels": dict(agent.labels),
            "capacity": agent.capacity,
            "running": agent.running,
            "state": agent.state,
            "last_seen_ms": agent.last_seen_ms or None,
        }
    )


def deployment_doc(deployment: control_pb2.Deployment) -> dict[str, Any]:
    return with_times(_deployment_fields(deployment))


def _deployment_fields(deployment: control_pb2.Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "environment": deployment.environment,
        "build": deployment.build_id,
        "job": deployment.job,
        "status": deployment.status,
        "commit": deployment.commit or None,
        "artifacts": [
            {"job": a.job, "name": a.name, "sha256": a.sha256} for a in deployment.artifacts
        ],
        "approvals": [
            {
                "job": a.job,
                "by": a.by,
                "decision": a.decision,
                "at_ms": a.at_ms,
                "comment": a.comment,
            }
            for a in deployment.approvals
        ],
        "redeploys": deployment.redeploys or None,
        "actor": deployment.actor,
        "started_at_ms": deployment.started_at_ms,
        "finished_at_ms": deployment.finished_at_ms,
        "committed_at_ms": (
            deployment.committed_at_ms if deployment.HasField("committed_at_ms") else None
        ),
    }


def environment_doc(environment: control_pb2.Environment) -> dict[str, Any]:
    current = environment.current if environment.HasField("current") else None
    return {
        "name": environment.name,
        "url": environment.url or None,
        "current": deployment_doc(current) if current is not None else None,
    }


class LeadTimeDoc(TypedDict):
    median: float | None
    p90: float | None


class TimeToRestoreDoc(TypedDict):
    median: float | None


class DoraDocument(TypedDict):
    """`conveyor dora --json`: durations in seconds, the rate a fraction in 0..1, null where
    there is no data; `environment` null for all environments."""

    environment: str | None
    since_ms: int
    since: str | None
    deployments: int
    deployment_frequency_per_day: float | None
    lead_time_s: LeadTimeDoc
    change_failure_rate: float | None
    time_to_restore_s: TimeToRestoreDoc


def figures_doc(reply: control_pb2.DeliveryFigures) -> DoraDocument:
    """The §8 document; an unset optional field is null (no data), never 0."""
    has = reply.HasField
    frequency = reply.deployment_frequency_per_day
    return {
        "environment": reply.environment or None,
        "since_ms": reply.since_ms,
        "since": iso_utc(reply.since_ms),
        "deployments": reply.deployments,
        "deployment_frequency_per_day": frequency if has("deployment_frequency_per_day") else None,
        "lead_time_s": {
            "median": reply.lead_time_median_s if has("lead_time_median_s") else None,
            "p90": reply.lead_time_p90_s if has("lead_time_p90_s") else None,
        },
        "change_failure_rate": reply.change_failure_rate if has("change_failure_rate") else None,
        "time_to_restore_s": {
            "median": (reply.time_to_restore_median_s if has("time_to_restore_median_s") else None)
        },
    }


def environments_doc(environments: list[control_pb2.Environment]) -> dict[str, Any]:
    """`conveyor envs --json`."""
    return {"environments": [environment_doc(e) for e in environments]}


def deployments_doc(reply: control_pb2.ListDeploymentsResponse) -> dict[str, Any]:
    """`conveyor deployments ENV --json`: newest first."""
    return {
        "environment": reply.environment,
        "deployments": [deployment_doc(d) for d in reply.deployments],
    }


def decision_doc(build: control_pb2.Build, job: str) -> dict[str, Any]:
    """`conveyor approve|reject --json`: the gate's approval as recorded, with its build and job."""
    gate = next(j for j in build.jobs if j.name == job)
    approval = _with_approval({}, gate).get("approval", {})
    return with_times({"build": build.id, "job": job, **approval})


def log_doc(
    build: control_pb2.Build,
    job: str,
    attempt_number: int,
    chunks: list[control_pb2.LogChunk],
    only_step: str = "",
) -> dict[str, Any]:
    """`conveyor logs BUILD JOB --json`: the attempt's steps (only `only_step`, if named), each
    with its log as text. The text is the bytes decoded as UTF-8 with invalid bytes replaced
    (U+FFFD); `exact` says whether it is the stored bytes exactly, `log_bytes` counts them."""
    found = next((j for j in build.jobs if j.name == job), None)
    attempts = [a for a in found.attempts if a.number == attempt_number] if found else []
    data: dict[int, list[bytes]] = {}
    for chunk in chunks:
        data.setdefault(chunk.step_index, []).append(chunk.data)
    steps = [
        _log_step(step, b"".join(data.get(step.index, [])))
        for step in (attempts[0].steps if attempts else [])
        if not only_step or step.name == only_step
    ]
    attempt = attempt_number if attempts else None
    return with_times({"build": build.id, "job": job, "attempt": attempt, "steps": steps})


def _log_step(step: control_pb2.Step, raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace")
    return {
        "index": step.index,
        "name": step.name,
        "status": wire.step_status_from_pb(step.status).value,
        "exit_code": step.exit_code if step.has_exit_code else None,
        "started_at_ms": step.started_at_ms or None,
        "finished_at_ms": step.finished_at_ms or None,
        "log": text,
        "log_bytes": len(raw),
        "exact": text.encode("utf-8") == raw,
    }
