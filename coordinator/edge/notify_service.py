"""NotifyService: `conveyor notify add | list | remove`; protobuf in and out, the domain between.

A secret or token comes in only with AddNotifyTarget, and no answer carries one.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor import wire
from conveyor.v1 import notify_pb2, notify_pb2_grpc
from coordinator.domain.access import MANAGE, Principal
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.notify_records import TargetKind, TargetRecord
from coordinator.edge.errors import Context, unary

_KINDS = {
    notify_pb2.NOTIFY_TARGET_KIND_WEBHOOK: TargetKind.WEBHOOK,
    notify_pb2.NOTIFY_TARGET_KIND_COMMIT_STATUS: TargetKind.COMMIT_STATUS,
}
_KINDS_PB = {kind: number for number, kind in _KINDS.items()}


def target_to_pb(record: TargetRecord) -> notify_pb2.NotifyTarget:
    target = notify_pb2.NotifyTarget(
        id=record.id,
        kind=_KINDS_PB[record.kind],
        url=record.url,
        repo=record.repo,
        events=[event.value for event in record.events],
        signed=record.signed,
        created_at_ms=record.created_at_ms,
        created_by=record.created_by,
        delivered=record.delivered,
        pending=record.pending,
        failed=record.failed,
        last_error=record.last_error,
    )
    if record.next_try_at_ms is not None:
        target.next_try_at_ms = record.next_try_at_ms
    return target


class NotifyService(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._targets = core.notify_targets

    async def _authorize(self, context: Context, allowed: Sequence[str], action: str) -> Principal:
        token = wire.token_from_metadata(context.invocation_metadata())
        return await self._access.authorize(token, allowed, action)

    @unary
    async def AddNotifyTarget(
        self, request: notify_pb2.AddNotifyTargetRequest, context: Context
    ) -> notify_pb2.NotifyTarget:
        principal = await self._authorize(context, MANAGE, "add a notification target")
        kind = _KINDS.get(request.kind)
        if kind is None:
            raise ValueError("the target's kind is missing or unknown")
        record = await self._targets.add(
            principal,
            kind,
            request.url,
            repo=request.repo,
            events=list(request.events),
            secret=request.secret,
            link=request.link,
        )
        return target_to_pb(record)

    @unary
    async def ListNotifyTargets(
        self, request: notify_pb2.ListNotifyTargetsRequest, context: Context
    ) -> notify_pb2.ListNotifyTargetsResponse:
        principal = await self._authorize(context, MANAGE, "list notification targets")
        records = await self._targets.list(principal)
        return notify_pb2.ListNotifyTargetsResponse(targets=[target_to_pb(r) for r in records])

    @unary
    async def RemoveNotifyTarget(
        self, request: notify_pb2.RemoveNotifyTargetRequest, context: Context
    ) -> notify_pb2.NotifyTarget:
        principal = await self._authorize(
            context, MANAGE, f"remove notification target {request.id}"
        )
        return target_to_pb(await self._targets.remove(principal, request.id))


__all__ = ["NotifyService"]
