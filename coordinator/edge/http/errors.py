"""The one mapping from domain errors to HTTP statuses, and the `{"error": message}` body."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from conveyor.pipeline import PipelineError
from coordinator.config import MAX_HTTP_BODY_BYTES
from coordinator.domain.errors import (
    AlreadyExistsError,
    AuthError,
    ConflictError,
    DataLossError,
    ExhaustedError,
    FencedError,
    NotFoundError,
    OutOfRangeError,
    RangeError,
    RoleError,
    StorageExhaustedError,
)

LOGGER = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# First match wins: subclasses before their bases (RangeError is an OutOfRangeError, a
# ConflictError a ValueError).
_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (AuthError, 401),
    (RoleError, 403),
    (FencedError, 409),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (StorageExhaustedError, 503),
    (ExhaustedError, 429),
    (DataLossError, 500),
    (PipelineError, 400),
    (RangeError, 416),
    (OutOfRangeError, 400),
    (ValueError, 400),
)
_OPERATORS_BUSINESS = (StorageExhaustedError, DataLossError)


class BodyTooLarge(ValueError):
    """A request body past MAX_HTTP_BODY_BYTES."""


def status_for(error: Exception) -> int | None:
    if isinstance(error, _OPERATORS_BUSINESS):
        LOGGER.warning("%s", error)
    if isinstance(error, BodyTooLarge):
        return 413
    for kind, status in _STATUSES:
        if isinstance(error, kind):
            return status
    return None


def error_response(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def api(endpoint: Endpoint) -> Endpoint:
    """Answers a domain error with its status and `{"error": message}`; anything else is a 500
    that is logged with its traceback."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as error:
            status = status_for(error)
            if status is None:
                LOGGER.exception("%s %s failed", request.method, request.url.path)
                return error_response(500, f"internal error: {error}")
            return error_response(status, str(error))

    return wrapper


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read up to MAX_HTTP_BODY_BYTES (BodyTooLarge past it); an
    empty body is an empty object."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_HTTP_BODY_BYTES:
        raise BodyTooLarge(f"the body is {declared} bytes; at most {MAX_HTTP_BODY_BYTES} are read")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_HTTP_BODY_BYTES:
            raise BodyTooLarge(f"the body is over {MAX_HTTP_BODY_BYTES} bytes")
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    if not isinstance(doc, dict):
        raise ValueError("the body must be a JSON object")
    return doc


def text_field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string")
    return value


def int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}: not an integer: {text[:40]!r}") from None


def path_int(request: Request, name: str) -> int:
    value = request.path_params[name]
    assert isinstance(value, int)  # the route's `:int` converter made it one
    if value > 2**63 - 1:
        raise OutOfRangeError(f"{name}: {value} is out of range")
    return value
