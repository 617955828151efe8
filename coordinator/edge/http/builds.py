"""/api/v1/builds: list, submit, get, cancel, retry, and each job's document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.documents import build_doc, build_summary_doc
from coordinator.domain.access import READ, RUN
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.build_filter import build_filter
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import BuildFilter
from coordinator.edge.convert import build_to_pb, summary_to_pb
from coordinator.edge.http.auth import authorize
from coordinator.edge.http.errors import api, int_param, json_body, path_int, text_field


def _filter(request: Request) -> BuildFilter:
    """`?status=failed,canceled&status=running&name=shop&branch=main`: a state may repeat or be a
    comma list, as on the command line."""
    statuses = [
        state for value in request.query_params.getlist("status") for state in value.split(",")
    ]
    params = request.query_params
    return build_filter(
        [state for state in statuses if state], params.get("name", ""), params.get("branch", "")
    )


def _env(doc: dict[str, Any]) -> dict[str, str]:
    env = doc.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("env: must be an object of strings")
    return env


def _source(doc: dict[str, Any]) -> SourceSpec:
    source = doc.get("source") or {}
    if not isinstance(source, dict):
        raise ValueError("source: must be an object")
    return SourceSpec(
        snapshot_sha256=text_field(source, "snapshot_sha256"),
        git_url=text_field(source, "git_url"),
        git_ref=text_field(source, "git_ref"),
    )


class BuildRoutes:
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._builds = core.builds

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/builds", api(self.list), methods=["GET"]),
            Route("/builds", api(self.submit), methods=["POST"]),
            Route("/builds/{build:int}", api(self.get), methods=["GET"]),
            Route("/builds/{build:int}/cancel", api(self.cancel), methods=["POST"]),
            Route("/builds/{build:int}/retry", api(self.retry), methods=["POST"]),
            Route("/builds/{build:int}/jobs", api(self.jobs), methods=["GET"]),
            Route("/builds/{build:int}/jobs/{job}", api(self.job), methods=["GET"]),
        ]

    async def list(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "read builds")
        builds = await self._builds.list(int_param(request, "limit", 0), _filter(request))
        return JSONResponse([build_summary_doc(summary_to_pb(b)) for b in builds])

    async def submit(self, request: Request) -> Response:
        by = await authorize(self._access, request, RUN, "run builds")
        doc = await json_body(request)
        pipeline = text_field(doc, "pipeline")
        if not pipeline:
            raise ValueError("pipeline: the pipeline's YAML text is required")
        build_id = await self._builds.submit(
            pipeline,
            source_name=text_field(doc, "source_name") or "pipeline.yml",
            env=_env(doc),
            source=_source(doc),
            branch=text_field(doc, "branch"),
            tag=text_field(doc, "tag"),
            by=by,
        )
        return JSONResponse({"id": build_id}, status_code=201)

    async def get(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "read builds")
        build = await self._builds.get(path_int(request, "build"))
        return JSONResponse(build_doc(build_to_pb(build)))

    async def cancel(self, request: Request) -> Response:
        by = await authorize(self._access, request, RUN, "cancel builds")
        build = await self._builds.cancel(path_int(request, "build"), by)
        return JSONResponse(build_doc(build_to_pb(build)))

    async def retry(self, request: Request) -> Response:
        by = await authorize(self._access, request, RUN, "retry builds")
        job = text_field(await json_body(request), "job")
        build = await self._builds.retry(path_int(request, "build"), job or None, by)
        return JSONResponse(build_doc(build_to_pb(build)))

    async def jobs(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "read builds")
        build = build_doc(build_to_pb(await self._builds.get(path_int(request, "build"))))
        return JSONResponse(build["jobs"])

    async def job(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "read builds")
        build = await self._builds.get(path_int(request, "build"))
        name = request.path_params["job"]
        found = [j for j in build_doc(build_to_pb(build))["jobs"] if j["name"] == name]
        if not found:
            raise NotFoundError(f"build {build.id} has no job {name!r}")
        return JSONResponse(found[0])
