"""Who an HTTP call is from: `Authorization: Bearer TOKEN`, checked as gRPC checks its token."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from coordinator.domain.access import Access, Principal


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authorize(
    access: Access, request: Request, allowed: Sequence[str], action: str
) -> Principal:
    """The caller's principal, as gRPC calls get it: AuthError without a valid token (401),
    RoleError (403) when its role is not one of `allowed` or above."""
    return await access.authorize(bearer_token(request), allowed, action)


def client_of(request: Request) -> str:
    """Who holds a stream, for its per-client bound: the caller's host, as for gRPC."""
    return f"http:{request.client.host}" if request.client else "http:unknown"
