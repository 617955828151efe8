"""The one mapping from domain errors to gRPC status codes, applied to every service method."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from conveyor.pipeline import PipelineError
from coordinator.config import MAX_STATUS_DETAILS_BYTES
from coordinator.domain.errors import (
    AlreadyExistsError,
    AuthError,
    ConflictError,
    DataLossError,
    ExhaustedError,
    FencedError,
    NotFoundError,
    OutOfRangeError,
    RoleError,
    StorageExhaustedError,
)

LOGGER = logging.getLogger(__name__)
S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

# What every servicer method receives (Any: each method has its own request and response).
Context = grpc.aio.ServicerContext[Any, Any]

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (AuthError, grpc.StatusCode.UNAUTHENTICATED),
    (FencedError, grpc.StatusCode.FAILED_PRECONDITION),
    (RoleError, grpc.StatusCode.PERMISSION_DENIED),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (ConflictError, grpc.StatusCode.FAILED_PRECONDITION),
    # A full or failing disk: nothing was recorded, and agents retry this code with backoff.
    (StorageExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DataLossError, grpc.StatusCode.DATA_LOSS),
    (PipelineError, grpc.StatusCode.INVALID_ARGUMENT),
    (OutOfRangeError, grpc.StatusCode.OUT_OF_RANGE),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


# Mapped errors the operator must hear of too, not only the caller: the server's disk or files.
_OPERATORS_BUSINESS = (StorageExhaustedError, DataLossError)


def status_for(error: Exception) -> grpc.StatusCode | None:
    if isinstance(error, _OPERATORS_BUSINESS):
        LOGGER.warning("%s", error)
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return None


def unary(
    method: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Awaitable[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Context) -> Resp:
        try:
            return await method(self, request, context)
        except Exception as error:
            code = status_for(error)
            if code is None:
                LOGGER.exception("%s failed", method.__name__)
                await context.abort(grpc.StatusCode.INTERNAL, details(f"internal error: {error}"))
            await context.abort(code, details(str(error)))
            raise  # unreachable: abort raises

    return wrapper


async def abort_for(error: Exception, context: Context) -> None:
    """For streaming methods: abort with the mapped code, re-raising unknown errors."""
    code = status_for(error)
    if code is None:
        raise error
    await context.abort(code, details(str(error)))


def details(message: str) -> str:
    """The message as a status can carry it: whole lines up to MAX_STATUS_DETAILS_BYTES.

    Details travel in a header, and a client refuses headers past 8 KiB with a message of its
    own ("received metadata size exceeds soft limit"), so the caller would never learn why."""
    if len(message.encode()) <= MAX_STATUS_DETAILS_BYTES:
        return message
    lines = message.splitlines()
    kept: list[str] = []
    size = 0
    for line in lines:
        size += len(line.encode()) + 1
        if size > MAX_STATUS_DETAILS_BYTES:
            break
        kept.append(line)
    if not kept:  # one long line: cut it at a character boundary
        head = message.encode()[:MAX_STATUS_DETAILS_BYTES].decode(errors="ignore")
        return f"{head}… (cut: {len(message.encode())} bytes in all)"
    return "\n".join(kept) + f"\n… and {len(lines) - len(kept)} more lines not shown"


__all__ = ["Context", "abort_for", "details", "status_for", "unary"]
