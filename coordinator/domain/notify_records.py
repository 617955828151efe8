"""Outgoing notifications as the domain and the store exchange them: targets, events, tries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from coordinator.domain.delivery_records import DeploymentRecord
from coordinator.domain.records import BuildRecord


class NotifyEvent(StrEnum):
    """What a target can hear of (DESIGN §4.2)."""

    BUILD = "build"  # a build finished, whatever its status
    DEPLOYMENT = "deployment"  # a deployment job's result was recorded
    GATE = "gate"  # an approval gate began waiting for a decision


class TargetKind(StrEnum):
    WEBHOOK = "webhook"  # POSTs the event's JSON to the target's URL, signed with its secret
    COMMIT_STATUS = "commit_status"  # POSTs a forge's commit status for the build's commit


class DeliveryState(StrEnum):
    PENDING = "pending"  # not yet delivered: due at `next_try_at_ms`
    DELIVERED = "delivered"  # a try was answered 2xx
    FAILED = "failed"  # given up after the last try


EventRenderer = Callable[[NotifyEvent, BuildRecord, str | None, DeploymentRecord | None], bytes]
"""The body of a webhook's event: the CLI's build (and deployment) documents, as JSON bytes;
the third argument names the gate of a gate event.

The store calls it inside the transaction that makes the change, so the body is the state at
the event, frozen: every retry sends the same bytes."""


@dataclass(frozen=True)
class NewTarget:
    kind: TargetKind
    url: str  # a webhook's URL, or a forge's API base (commit statuses)
    repo: str  # "OWNER/REPO" for commit statuses; "" for a webhook
    events: tuple[NotifyEvent, ...]
    sealed: bytes | None  # the webhook's secret or the forge's token, sealed; None: unsigned
    link: str  # commit statuses: a build's page is this + "/builds/ID" ("": no link)


@dataclass(frozen=True)
class TargetRecord:
    id: int
    kind: TargetKind
    url: str
    repo: str
    events: tuple[NotifyEvent, ...]
    signed: bool  # whether it has a secret (a webhook) or a token (commit statuses)
    created_at_ms: int
    created_by: str
    delivered: int = 0
    pending: int = 0
    failed: int = 0
    last_error: str = ""  # the latest failed try's status or error, "" if none failed
    next_try_at_ms: int | None = None  # when its oldest pending event is tried next


@dataclass(frozen=True)
class Delivery:
    """An event due to be sent: the oldest pending one of its target."""

    id: int
    delivery_id: str  # unique, sent as X-Conveyor-Delivery so receivers can drop repeats
    target_id: int
    kind: TargetKind
    event: NotifyEvent
    url: str
    body: bytes
    sealed: bytes | None
    seal_scope: str  # what the secret was sealed for (the target's URL)
    tries: int  # tries made before this one


@dataclass(frozen=True)
class TryOutcome:
    """One try: the HTTP status it got (None: no answer) and what went wrong ("" if 2xx)."""

    at_ms: int
    status: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300
