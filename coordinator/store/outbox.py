"""Events into the notification outbox, inside the transaction of the change they tell of.

`emit` is called where a build settles its final status, where a gate begins waiting, and where
a deployment is recorded (`progress`, `deployments`): the event commits or rolls back with the
change, so none is lost and none is made up. Each row holds its body as rendered then (the state
at the event), so every retry sends the same bytes.
"""

from __future__ import annotations

import json
import logging
import uuid

from sqlalchemy import Table, select
from sqlmodel import Session

from coordinator.domain.delivery_records import DeploymentRecord
from coordinator.domain.notify_events import commit_status_body, status_url
from coordinator.domain.notify_records import (
    DeliveryState,
    EventRenderer,
    NotifyEvent,
    TargetKind,
)
from coordinator.store import queries
from coordinator.store.artifact_tables import BuildSourceRow
from coordinator.store.base import RENDERER
from coordinator.store.engine import now_ms
from coordinator.store.notify_tables import NotifyOutboxRow, NotifyTargetRow
from coordinator.store.tables import BuildRow

LOGGER = logging.getLogger(__name__)

TARGETS: Table = NotifyTargetRow.__table__  # type: ignore[attr-defined]


def emit(
    session: Session,
    event: NotifyEvent,
    build_id: int,
    *,
    gate: str | None = None,
    deployment: DeploymentRecord | None = None,
) -> None:
    """Adds one outbox row per target that hears of `event` (none: nothing is read)."""
    targets = [
        row
        for row in session.execute(select(TARGETS)).all()
        if event.value in json.loads(row.events_json)
    ]
    if not targets:
        return
    render: EventRenderer | None = session.info.get(RENDERER)
    if render is None:
        LOGGER.error("no notification renderer: %s event of build %d not sent", event, build_id)
        return
    # Rows changed by bulk statements earlier in this transaction are read again as they are now.
    session.flush()
    session.expire_all()
    build_row = session.get(BuildRow, build_id)
    assert build_row is not None
    build = queries.build_record(session, build_row, with_attempts=True)
    payload: bytes | None = None
    for target in targets:
        if TargetKind(target.kind) is TargetKind.WEBHOOK:
            payload = payload or render(event, build, gate, deployment)
            _add(session, target.id, event, build_id, target.url, payload)
            continue
        commit = _commit_of(session, build_id)
        body = commit_status_body(build, event, gate, target.link) if commit else None
        if commit and body is not None:
            url = status_url(target.url, target.repo, commit)
            _add(session, target.id, event, build_id, url, body)


def _commit_of(session: Session, build_id: int) -> str:
    """The build's commit: its git source's, as the first agent that checked it out resolved it."""
    source = session.get(BuildSourceRow, build_id)
    return source.git_commit if source is not None and source.git_url else ""


def _add(
    session: Session, target_id: int, event: NotifyEvent, build_id: int, url: str, body: bytes
) -> None:
    now = now_ms()
    session.add(
        NotifyOutboxRow(
            delivery_id=uuid.uuid4().hex,
            target_id=target_id,
            event=event.value,
            build_id=build_id,
            url=url,
            body=body,
            created_at_ms=now,
            state=DeliveryState.PENDING.value,
            next_try_at_ms=now,
        )
    )
