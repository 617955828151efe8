"""Taking jobs off the queue: the oldest queued jobs an agent's labels satisfy, atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import select, tuple_, update
from sqlmodel import Session, col

from conveyor.states import JobStatus
from coordinator.config import CLAIM_PAGE_ROWS, CLAIM_SCAN_LIMIT
from coordinator.policy import scheduling
from coordinator.store.tables import JobRow


def take_queued(session: Session, labels: Mapping[str, str], wanted: int) -> list[int]:
    """Marks up to `wanted` matching queued jobs running and returns their ids.

    Each is taken with a compare-and-set update, so two claimers never get the same job.
    """
    taken = []
    for job_id in _matching_queued(session, labels, wanted):
        claimed = session.execute(
            update(JobRow)
            .where(col(JobRow.id) == job_id, col(JobRow.status) == JobStatus.QUEUED)
            .values(status=JobStatus.RUNNING, reason="", message="")
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(job_id)
    return taken


def _matching_queued(session: Session, labels: Mapping[str, str], wanted: int) -> list[int]:
    """Ids of up to `wanted` oldest queued jobs `labels` satisfy, read a page at a time.

    Only ids and labels are read, along the queue index, and only as far as needed (at most
    CLAIM_SCAN_LIMIT jobs), so a claim costs the same with ten queued jobs or ten thousand.
    """
    found: list[int] = []
    after: tuple[int, int] | None = None
    scanned = 0
    while len(found) < wanted and scanned < CLAIM_SCAN_LIMIT:
        query = select(col(JobRow.id), col(JobRow.queued_seq), col(JobRow.labels_json)).where(
            col(JobRow.status) == JobStatus.QUEUED
        )
        if after is not None:
            query = query.where(tuple_(col(JobRow.queued_seq), col(JobRow.id)) > after)
        page = session.execute(
            query.order_by(col(JobRow.queued_seq), col(JobRow.id)).limit(CLAIM_PAGE_ROWS)
        ).all()
        for job_id, seq, labels_json in page:
            after = (seq, job_id)
            if len(found) < wanted and scheduling.labels_match(json.loads(labels_json), labels):
                found.append(job_id)
        scanned += len(page)
        if len(page) < CLAIM_PAGE_ROWS:
            break
    return found
