"""Step logs over HTTP: any byte range of a log (`Range: bytes=A-B` or `?offset=&limit=`), and
the live log as Server-Sent Events that resume from a byte offset (`Last-Event-ID` or
`?offset=`): each event's id is the offset just after its bytes."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from conveyor.documents import build_doc
from coordinator.config import LOG_RANGE_MAX_BYTES
from coordinator.domain.access import READ
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import NotFoundError
from coordinator.domain.follow import LogQuery
from coordinator.domain.records import BuildRecord
from coordinator.edge.convert import build_to_pb
from coordinator.edge.http.auth import authorize, client_of
from coordinator.edge.http.errors import api, int_param, path_int, status_for

_RANGE = re.compile(r"bytes=(\d{1,16})-(\d{0,16})")
LOG_PATH = "/builds/{build:int}/jobs/{job}/steps/{step:int}/log"


def _range(request: Request) -> tuple[int, int]:
    """(offset, limit) from a `Range: bytes=START-[END]` header, else the query."""
    header = request.headers.get("range")
    if header is None:
        return int_param(request, "offset", 0), int_param(request, "limit", LOG_RANGE_MAX_BYTES)
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        raise ValueError(f"Range: only one 'bytes=START-END' range is served, not {header[:60]!r}")
    start = int(found[1])
    if not found[2]:
        return start, LOG_RANGE_MAX_BYTES
    end = int(found[2])
    if end < start:
        raise ValueError(f"Range: the end {end} is before the start {start}")
    return start, min(end - start + 1, LOG_RANGE_MAX_BYTES)


def _resume_offset(request: Request) -> int:
    last = request.headers.get("last-event-id", "").strip()
    if last:
        if not last.isdigit() or len(last) > 16:
            raise ValueError(f"Last-Event-ID: not a byte offset: {last[:40]!r}")
        return int(last)
    return int_param(request, "offset", 0)


def _event(kind: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


class LogRoutes:
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._builds = core.builds
        self._follow = core.follow

    def routes(self) -> list[BaseRoute]:
        return [
            Route(LOG_PATH, api(self.read), methods=["GET"]),
            Route(LOG_PATH + "/live", api(self.live), methods=["GET"]),
            Route("/builds/{build:int}/events", api(self.build_events), methods=["GET"]),
        ]

    async def read(self, request: Request) -> Response:
        """The exact bytes asked for (206 with Content-Range, or 200 for a query), and the
        log's length so far in `X-Log-Length`."""
        await authorize(self._access, request, READ, "read logs")
        offset, limit = _range(request)
        found = await self._follow.read_range(
            path_int(request, "build"),
            request.path_params["job"],
            path_int(request, "step"),
            int_param(request, "attempt", 0),
            offset,
            limit,
        )
        headers = {"X-Log-Length": str(found.total), "Accept-Ranges": "bytes"}
        status = 200
        if "range" in request.headers:
            status = 206
            last = found.offset + len(found.data) - 1
            span = f"{found.offset}-{last}" if found.data else "*"
            headers["Content-Range"] = f"bytes {span}/{found.total}"
        return Response(found.data, status, headers, media_type="application/octet-stream")

    async def live(self, request: Request) -> Response:
        """`log` events (`{"offset", "data_b64"}`) from the resume offset until the step ends,
        then an `end` event; a failure after the stream began is an `error` event."""
        await authorize(self._access, request, READ, "read logs")
        build_id, job, index = (
            path_int(request, "build"),
            request.path_params["job"],
            path_int(request, "step"),
        )
        record = (await self._builds.get(build_id)).job(job)
        if record is None:
            raise NotFoundError(f"build {build_id} has no job {job!r}")
        if index >= len(record.step_names):
            raise NotFoundError(f"job {job!r} has no step {index}")
        query = LogQuery(
            build_id,
            job,
            record.step_names[index],
            int_param(request, "attempt", 0),
            follow=True,
            from_step=index,
            from_offset=_resume_offset(request),
        )
        return self._stream(request, self._log_events(query))

    async def _log_events(self, query: LogQuery) -> AsyncIterator[bytes]:
        async for chunk in self._follow.read(query):
            end = chunk.offset + len(chunk.data)
            doc = {"offset": chunk.offset, "data_b64": base64.b64encode(chunk.data).decode()}
            yield _event("log", doc, end)
        yield _event("end", {})

    async def build_events(self, request: Request) -> Response:
        """A `build` event with the build document on every change, until the build ends."""
        await authorize(self._access, request, READ, "read logs")
        build_id = path_int(request, "build")
        await self._builds.get(build_id)  # NotFound before the stream starts
        return self._stream(request, self._build_events(build_id))

    async def _build_events(self, build_id: int) -> AsyncIterator[bytes]:
        async for item in self._follow.watch(build_id, False, {}):
            if isinstance(item, BuildRecord):
                yield _event("build", build_doc(build_to_pb(item)))
        yield _event("end", {})

    def _stream(self, request: Request, events: AsyncIterator[bytes]) -> Response:
        streams = self._follow.streams
        client = client_of(request)
        # A client at its bound hears 429 before the stream starts; the stream then holds its
        # own slot for as long as it runs (one taken in between ends it with an `error` event).
        with streams.open(client):
            pass

        async def guarded() -> AsyncIterator[bytes]:
            try:
                with streams.open(client):
                    async for event in events:
                        yield event
            except Exception as error:
                if status_for(error) is None:
                    raise
                yield _event("error", {"error": str(error)})

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(guarded(), media_type="text/event-stream", headers=headers)
