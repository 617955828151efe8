"""Tokens and audit events between the domain's records and protobuf."""

from __future__ import annotations

from conveyor.v1 import control_pb2
from coordinator.domain.audit import AuditEvent
from coordinator.domain.records import TokenRecord


def token_to_pb(token: TokenRecord) -> control_pb2.Token:
    return control_pb2.Token(
        name=token.name,
        role=token.role,
        created_at_ms=token.created_at_ms,
        last_used_ms=token.last_used_ms or 0,
    )


def audit_event_to_pb(event: AuditEvent) -> control_pb2.AuditEvent:
    return control_pb2.AuditEvent(
        at_ms=event.at_ms,
        by=event.by,
        action=event.action,
        target=event.target,
        detail=event.detail,
    )
