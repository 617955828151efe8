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
from coordinator.store.commits import build_commit
from coordinator.store.engine import now_ms
from coordinator.store.notify_tables import NotifyOutboxRow, NotifyTargetRow
from coordinator.store.prepared import Prepared
from coordinator.store.tables import BuildRow

LOGGER = logging.getLogger(__name__)

TARGETS: Table = NotifyTargetRow.__table__  # type: ignore[attr-defined]
# Read at every build's end: built once.
_ALL_TARGETS = Prepared(select(TARGETS))


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
        row for row in _ALL_TARGETS.run(session).all() if event.value in json.loads(row.events_json)
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
        commit = _commit_of(session, build_id, target.repo)
        body = commit_status_body(build, event, gate, target.link) if commit else None
        if commit and body is not None:
            url = status_url(target.url, target.repo, commit)
            _add(session, target.id, event, build_id, url, body)


def _commit_of(session: Session, build_id: int, repo: str) -> str:
    """The build's commit (`build_commit`) when its git source is the forge repository `repo`
    (OWNER/REPO), else "": a status for another repository's commit would only be refused, and
    retried for hours ahead of the target's later events."""
    source = session.get(BuildSourceRow, build_id)
    if source is None or not source.git_url or not _names_repo(source.git_url, repo):
        return ""
    return build_commit(source.git_url, source.git_ref, source.git_commit)


def _names_repo(url: str, repo: str) -> bool:
    """Whether a clone URL (https://forge/OWNER/REPO.git, git@forge:OWNER/REPO, a path) ends in
    OWNER/REPO; forges treat the names without case."""
    path = url.rstrip("/").lower()
    path = path.removesuffix(".git")
    wanted = repo.lower()
    return path == wanted or path.endswith(("/" + wanted, ":" + wanted))


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
