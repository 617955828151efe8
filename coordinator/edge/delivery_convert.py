"""Deployments and environments between domain records and protobuf."""

from __future__ import annotations

from conveyor.v1 import control_pb2
from coordinator.domain.delivery_records import DeploymentRecord, EnvironmentRecord
from coordinator.policy.dora import DeliveryFigures


def deployment_to_pb(deployment: DeploymentRecord) -> control_pb2.Deployment:
    message = control_pb2.Deployment(
        id=deployment.id,
        environment=deployment.environment,
        build_id=deployment.build_id,
        job=deployment.job,
        status=deployment.status,
        commit=deployment.commit or "",
        artifacts=[
            control_pb2.DeployedArtifact(job=a.job, name=a.name, sha256=a.sha256)
            for a in deployment.artifacts
        ],
        approvals=[
            control_pb2.DeploymentApproval(
                job=a.job, by=a.by, decision=a.decision, at_ms=a.at_ms, comment=a.comment
            )
            for a in deployment.approvals
        ],
        redeploys=deployment.redeploys or 0,
        actor=deployment.actor,
        started_at_ms=deployment.started_at_ms,
        finished_at_ms=deployment.finished_at_ms,
    )
    if deployment.committed_at_ms is not None:
        message.committed_at_ms = deployment.committed_at_ms
    return message


def environment_to_pb(environment: EnvironmentRecord) -> control_pb2.Environment:
    message = control_pb2.Environment(name=environment.name, url=environment.url or "")
    if environment.current is not None:
        message.current.CopyFrom(deployment_to_pb(environment.current))
    return message


def figures_to_pb(figures: DeliveryFigures) -> control_pb2.DeliveryFigures:
    # None stays unset: the optional fields carry "no data" as such, not as 0.
    optional = {
        "deployment_frequency_per_day": figures.deployment_frequency_per_day,
        "lead_time_median_s": figures.lead_time_s.median,
        "lead_time_p90_s": figures.lead_time_s.p90,
        "change_failure_rate": figures.change_failure_rate,
        "time_to_restore_median_s": figures.time_to_restore_s.median,
    }
    return control_pb2.DeliveryFigures(
        environment=figures.environment or "",
        since_ms=figures.since_ms,
        deployments=figures.deployments,
        **{name: value for name, value in optional.items() if value is not None},
    )
