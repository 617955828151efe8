"""The coordinator's outgoing HTTP: notifications POSTed with httpx, and their bodies rendered
as the CLI's JSON documents (`conveyor.documents`), so a receiver reads what `--json` prints."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import httpx

from conveyor.documents import build_doc, deployment_doc
from coordinator.config import (
    MAX_NOTIFY_ERROR_CHARS,
    NOTIFY_CONCURRENCY,
    NOTIFY_CONNECT_TIMEOUT_S,
    NOTIFY_REQUEST_TIMEOUT_S,
)
from coordinator.domain.delivery_records import DeploymentRecord
from coordinator.domain.notify_records import NotifyEvent, TryOutcome
from coordinator.domain.records import BuildRecord
from coordinator.edge.convert import build_to_pb
from coordinator.edge.delivery_convert import deployment_to_pb


def event_body(
    event: NotifyEvent, build: BuildRecord, gate: str | None, deployment: DeploymentRecord | None
) -> bytes:
    """`{"event", "build": BUILD, "deployment": DEPLOYMENT?, "job": GATE?}` as compact JSON."""
    doc: dict[str, object] = {"event": event.value, "build": build_doc(build_to_pb(build))}
    if deployment is not None:
        doc["deployment"] = deployment_doc(deployment_to_pb(deployment))
    if gate is not None:
        doc["job"] = gate
    return json.dumps(doc, separators=(",", ":")).encode()


class HttpxPoster:
    """One connection pool for every target; redirects are not followed (a 3xx is a failure:
    the body and its signature were meant for the URL given)."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(NOTIFY_REQUEST_TIMEOUT_S, connect=NOTIFY_CONNECT_TIMEOUT_S),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=NOTIFY_CONCURRENCY),
            # Where events go is the target's URL alone: no proxy or CA bundle is taken from
            # the coordinator's environment, which would see the bodies and their tokens.
            trust_env=False,
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> TryOutcome:
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as answer:
                status = answer.status_code
                if 200 <= status < 300:
                    return TryOutcome(_now_ms(), status, "")
                start = await _start_of(answer)
        except httpx.HTTPError as error:
            text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            return TryOutcome(_now_ms(), None, text[:MAX_NOTIFY_ERROR_CHARS])
        return TryOutcome(_now_ms(), status, f"HTTP {status}: {start}"[:MAX_NOTIFY_ERROR_CHARS])

    async def close(self) -> None:
        await self._client.aclose()


async def _start_of(answer: httpx.Response) -> str:
    """The first characters of an answer's body (a receiver's error page may be huge)."""
    read = b""
    async for chunk in answer.aiter_bytes():
        read += chunk
        if len(read) >= MAX_NOTIFY_ERROR_CHARS:
            break
    return read[:MAX_NOTIFY_ERROR_CHARS].decode(errors="replace").strip()


def _now_ms() -> int:
    return int(time.time() * 1000)
