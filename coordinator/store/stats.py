"""Counts over the whole farm for metrics and readiness: a few grouped reads, one transaction."""

from __future__ import annotations

import json

from sqlalchemy import func, select, text
from sqlmodel import col

from conveyor.states import JobStatus
from coordinator.domain.records import FarmCounts
from coordinator.store.artifact_tables import BlobRow
from coordinator.store.base import Component
from coordinator.store.delivery_tables import DeploymentRow
from coordinator.store.tables import BuildRow, JobRow


class StatsStore(Component):
    def ping(self) -> None:
        """Raises unless the database answers a trivial query."""
        with self._tx() as session:
            session.execute(text("SELECT 1"))

    def counts(self, max_label_sets: int) -> FarmCounts:
        with self._tx() as session:
            builds = session.execute(
                select(col(BuildRow.status), func.count()).group_by(col(BuildRow.status))
            ).all()
            jobs = session.execute(
                select(col(JobRow.status), func.count()).group_by(col(JobRow.status))
            ).all()
            queued = session.execute(
                select(col(JobRow.labels_json), func.count())
                .where(col(JobRow.status) == JobStatus.QUEUED.value)
                .group_by(col(JobRow.labels_json))
                .order_by(func.count().desc())
                .limit(max_label_sets)
            ).all()
            deployments = session.execute(
                select(
                    col(DeploymentRow.environment), col(DeploymentRow.status), func.count()
                ).group_by(col(DeploymentRow.environment), col(DeploymentRow.status))
            ).all()
            stored = session.execute(select(func.coalesce(func.sum(col(BlobRow.size)), 0))).scalar()
        return FarmCounts(
            builds={str(status): int(n) for status, n in builds},
            jobs={str(status): int(n) for status, n in jobs},
            queued_by_labels={_labels(raw): int(n) for raw, n in queued},
            deployments={(str(env), str(status)): int(n) for env, status, n in deployments},
            blob_bytes=int(stored or 0),
        )


def _labels(raw: str) -> str:
    """A label set as one stable text: `k=v,k2=v2` sorted (empty for no labels)."""
    labels = json.loads(raw) if raw else {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
