"""Who an HTTP call is from: `Authorization: Bearer TOKEN`, or the web view's sign-in cookie,
checked as gRPC checks its token."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from coordinator.domain.access import Access, Principal
from coordinator.domain.errors import RoleError

SESSION_COOKIE = "conveyor_token"
# The page sends this on every call that changes something. A cross-site form cannot set a
# header, so a cookie alone never changes anything (SameSite=Strict is the first guard).
PAGE_HEADER = "x-conveyor-request"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class CrossSiteRefused(RoleError):
    """A state-changing call signed in by the cookie only, without the page's header (403)."""


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def presented_token(request: Request) -> str | None:
    """The bearer token, else the sign-in cookie (then CrossSiteRefused for a state-changing
    call without the page's header)."""
    token = bearer_token(request)
    if token is not None:
        return token
    cookie = request.cookies.get(SESSION_COOKIE) or None
    page_call = request.headers.get(PAGE_HEADER) == "1"
    if cookie is not None and request.method not in _SAFE_METHODS and not page_call:
        raise CrossSiteRefused(
            f"a call signed in by cookie must carry the header {PAGE_HEADER}: 1 "
            "(or use Authorization: Bearer)"
        )
    return cookie


async def authorize(
    access: Access, request: Request, allowed: Sequence[str], action: str
) -> Principal:
    """The caller's principal, as gRPC calls get it: AuthError without a valid token (401),
    RoleError (403) when its role is not one of `allowed` or above."""
    return await access.authorize(presented_token(request), allowed, action)


def client_of(request: Request) -> str:
    """Who holds a stream, for its per-client bound: the caller's host, as for gRPC."""
    return f"http:{request.client.host}" if request.client else "http:unknown"
