"""/hooks/git/NAME: forges' push webhooks. No bearer token: the signature is the credential,
checked by the domain (`coordinator.domain.webhooks`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from coordinator.config import MAX_WEBHOOK_BODY_BYTES
from coordinator.domain.coordinator import Coordinator
from coordinator.edge.http.errors import BodyTooLarge, api


async def bounded_body(request: Request, limit: int) -> bytes:
    """The raw body (a signature covers its exact bytes), BodyTooLarge past `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; at most {limit} are read")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over {limit} bytes")
    return bytes(body)


class HookRoutes:
    def __init__(self, core: Coordinator) -> None:
        self._webhooks = core.webhooks

    def routes(self) -> list[BaseRoute]:
        return [Route("/hooks/git/{name}", api(self.git), methods=["POST"])]

    async def git(self, request: Request) -> Response:
        body = await bounded_body(request, MAX_WEBHOOK_BODY_BYTES)
        headers = {key.lower(): value for key, value in request.headers.items()}
        name = request.path_params["name"]
        outcome = await self._webhooks.receive(name, headers, body)
        return JSONResponse({"repo": name, "result": outcome}, status_code=202)
