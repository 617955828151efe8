"""The HTTP edge's own rules, over a coordinator of fakes: readiness follows the store, and each
domain error has its one status."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from coordinator.domain.errors import (
    AuthError,
    ConflictError,
    ExhaustedError,
    NotFoundError,
    OutOfRangeError,
    RangeError,
    RoleError,
    StorageExhaustedError,
)
from coordinator.domain.fanout import ClientStreams
from coordinator.domain.metrics import Stats
from coordinator.edge.http.app import make_app
from coordinator.edge.http.errors import status_for
from tests.unit.coordinator.fakes import NoStats, build, coordinator, job


class DownStats(NoStats):
    def ping(self) -> None:
        raise OSError("connection refused")


def test_readyz_is_503_with_why_when_the_store_does_not_answer() -> None:
    up, down = coordinator(), coordinator()
    down.state.stats = DownStats()
    down.core.stats = Stats(runtime=down.core.runtime, store=down.state.stats)

    async def get(app: Starlette, path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    async def main() -> None:
        assert (await get(make_app(up.core, CollectorRegistry()), "/readyz")).status_code == 200
        app = make_app(down.core, CollectorRegistry())
        refused = await get(app, "/readyz")
        assert refused.status_code == 503
        assert refused.json() == {"error": "the store does not answer: connection refused"}
        assert (await get(app, "/healthz")).status_code == 200  # the process still serves

    try:
        asyncio.run(main())
    finally:
        up.core.runtime.close()
        down.core.runtime.close()


def test_a_client_at_its_stream_bound_hears_429_before_a_stream_starts() -> None:
    harness = coordinator()
    harness.state.builds.records[1] = build(1, job("a"))
    harness.core.follow.streams = ClientStreams(0)
    app = make_app(harness.core, CollectorRegistry())

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(
                "/api/v1/builds/1/jobs/a/steps/0/log/live", headers={"Authorization": "Bearer c"}
            )

    try:
        refused = asyncio.run(main())
    finally:
        harness.core.runtime.close()
    assert refused.status_code == 429
    assert "streams open" in refused.json()["error"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthError("x"), 401),
        (RoleError("x"), 403),
        (NotFoundError("x"), 404),
        (ConflictError("x"), 409),
        (ValueError("x"), 400),
        (OutOfRangeError("x"), 400),
        (RangeError("x"), 416),
        (ExhaustedError("x"), 429),
        (StorageExhaustedError("x"), 503),
        (RuntimeError("x"), None),
    ],
)
def test_each_domain_error_has_one_status(error: Exception, status: int | None) -> None:
    assert status_for(error) == status
