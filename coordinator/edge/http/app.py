"""The HTTP application: the web view, the REST API under /api/v1, its OpenAPI document,
/metrics, /healthz, /readyz and the forges' webhooks under /hooks. No logic of its own: every
path calls the domain, as the gRPC services do."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from coordinator.domain.coordinator import Coordinator
from coordinator.edge.http.builds import BuildRoutes
from coordinator.edge.http.delivery import DeliveryRoutes
from coordinator.edge.http.errors import error_response
from coordinator.edge.http.hooks import HookRoutes
from coordinator.edge.http.logs import LogRoutes
from coordinator.edge.http.metrics import CONTENT_TYPE, MetricsEndpoint
from coordinator.edge.http.openapi import openapi_document
from coordinator.edge.http.web import WebRoutes

LOGGER = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


class Health:
    def __init__(self, core: Coordinator) -> None:
        self._stats = core.stats

    async def healthz(self, request: Request) -> Response:
        """The process serves HTTP: nothing else is asked."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """The store answers a query; 503 with the store's own words if not."""
        try:
            await self._stats.ready()
        except Exception as error:
            LOGGER.warning("not ready: the store does not answer: %s", error)
            return error_response(503, f"the store does not answer: {error}")
        return JSONResponse({"status": "ready"})


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, str(error.detail))


def make_app(core: Coordinator, registry: CollectorRegistry) -> Starlette:
    health = Health(core)
    metrics = MetricsEndpoint(core, registry)
    document = openapi_document()
    web = WebRoutes(core)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def scrape(request: Request) -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE)

    api = [
        Route("/openapi.json", openapi, methods=["GET"]),
        *BuildRoutes(core).routes(),
        *LogRoutes(core).routes(),
        *DeliveryRoutes(core).routes(),
        *web.api_routes(),
    ]
    return Starlette(
        routes=[
            Mount(API_PREFIX, routes=api),
            Route("/metrics", scrape, methods=["GET"]),
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            *HookRoutes(core).routes(),
            *web.routes(),
        ],
        exception_handlers={HTTPException: _http_error},
    )
