"""Who an HTTP call is from: `Authorization: Bearer TOKEN`, checked as gRPC checks its token."""

from __future__ import annotations

from starlette.requests import Request

from coordinator.domain.access import Access, Principal


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authorize(access: Access, request: Request) -> Principal:
    """The caller's principal (the same one gRPC calls get); AuthError without a valid token."""
    return access.check_client(bearer_token(request))


def client_of(request: Request) -> str:
    """Who holds a stream, for its per-client bound: the caller's host, as for gRPC."""
    return f"http:{request.client.host}" if request.client else "http:unknown"
