"""The web view: its pages (one HTML shell; the page's own modules pick the view from the path),
its static files, the sign-in that keeps the token in an HttpOnly cookie, and `/api/v1/whoami`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from coordinator.config import MAX_SIGNIN_FORM_BYTES, WEB_SESSION_MAX_AGE_S
from coordinator.domain.access import READ
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import AuthError
from coordinator.edge.http.auth import SESSION_COOKIE, authorize
from coordinator.edge.http.errors import api, error_response

STATIC_DIR = Path(__file__).parent / "static"
_SHELL = STATIC_DIR / "index.html"
# The page's paths (DESIGN §8); each answers the same shell, which reads its own location.
PAGE_PATHS = (
    "/",
    "/builds/{build:int}",
    "/builds/{build:int}/jobs/{job}",
    "/environments/{env}",
    "/agents",
)
_NO_CACHE = {"Cache-Control": "no-cache"}


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from this site's own page (no Origin: not a browser's
    cross-site post, which always sends one)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    """The fields of a small urlencoded form (the first value of each); a body past
    MAX_SIGNIN_FORM_BYTES is read no further."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_SIGNIN_FORM_BYTES:
            break
    fields = parse_qs(bytes(body[:MAX_SIGNIN_FORM_BYTES]).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items() if values}


class WebRoutes:
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access

    def routes(self) -> list[BaseRoute]:
        pages: list[BaseRoute] = [Route(path, self.page, methods=["GET"]) for path in PAGE_PATHS]
        return [
            *pages,
            Route("/signin", self.sign_in, methods=["POST"]),
            Route("/signout", self.sign_out, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]

    def api_routes(self) -> list[BaseRoute]:
        return [Route("/whoami", api(self.whoami), methods=["GET"])]

    async def page(self, request: Request) -> Response:
        return FileResponse(_SHELL, media_type="text/html", headers=_NO_CACHE)

    async def whoami(self, request: Request) -> Response:
        """`{"name", "role"}` of the caller's token: what the page may offer it."""
        principal = await authorize(self._access, request, READ, "read who it is")
        return JSONResponse({"name": principal.name, "role": principal.role})

    async def sign_in(self, request: Request) -> Response:
        """The form's `token`, checked, kept in the cookie; back to the page it came from."""
        if not _same_origin(request):
            return error_response(403, "sign-in is taken from this site's own page only")
        form = await _form(request)
        token = form.get("token", "")
        back = form.get("next", "/")
        target = back if back.startswith("/") and not back.startswith("//") else "/"
        if not token.strip():
            return RedirectResponse("/?signin=missing", status_code=303)
        try:
            await self._access.authenticate(token.strip())
        except AuthError:
            return RedirectResponse("/?signin=refused", status_code=303)
        reply = RedirectResponse(target, status_code=303)
        reply.set_cookie(
            SESSION_COOKIE,
            token.strip(),
            max_age=int(WEB_SESSION_MAX_AGE_S),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return reply

    async def sign_out(self, request: Request) -> Response:
        if not _same_origin(request):
            return error_response(403, "sign-out is taken from this site's own page only")
        reply = RedirectResponse("/", status_code=303)
        reply.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return reply
