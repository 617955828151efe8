"""The one mapping from gRPC failures to the agent's errors, and which of them are retried.

Retried (backoff with jitter, DESIGN §6.7): UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED.
FAILED_PRECONDITION on a call about an attempt means it is no longer ours (:class:`FencedError`);
an UNAUTHENTICATED session that another agent of the same name replaced cannot be taken back
(:class:`JoinRefusedError`). Everything else is a :class:`PeerError`, not retried blindly.
"""

from __future__ import annotations

import grpc

from agent.peer.base import FencedError, JoinRefusedError, PeerError

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# The coordinator's words when another agent registered under this agent's name.
SESSION_REPLACED = "session replaced"


class CallFailed(grpc.RpcError):
    """A request on the session stream that failed as its unary call would have: with this
    status. Classified, retried and mapped exactly as a failed unary call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def code_of(error: BaseException) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call | CallFailed) else None


def details_of(error: BaseException) -> str:
    return (error.details() if isinstance(error, grpc.Call | CallFailed) else "") or ""


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and code_of(error) in RETRYABLE


def describe(error: BaseException | None) -> str:
    """A one-line account of a failed call, without gRPC's debug dump."""
    if isinstance(error, grpc.Call | CallFailed):
        code = error.code()
        return f"{code.name if code else 'UNKNOWN'}: {error.details()}"
    return repr(error)


def forgot_session(error: grpc.RpcError) -> bool:
    """The coordinator no longer knows our session (it restarted): registering again helps."""
    return code_of(error) is grpc.StatusCode.UNAUTHENTICATED and not _replaced(error)


def _replaced(error: grpc.RpcError) -> bool:
    return SESSION_REPLACED in details_of(error)


def to_peer_error(error: grpc.RpcError) -> Exception:
    """The agent's error for a call that failed for good."""
    code = code_of(error)
    detail = details_of(error) or str(error)
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        return FencedError(detail)
    if code is grpc.StatusCode.UNAUTHENTICATED and _replaced(error):
        # Taking the session back would cut the other agent off in turn, forever.
        return JoinRefusedError(detail)
    name = code.name if code else "UNKNOWN"
    return PeerError(detail, code=name, transient=code in RETRYABLE)


def to_join_error(error: grpc.RpcError) -> Exception:
    """The agent's error for a registration that failed for good."""
    refusals = (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,  # a live agent holds the name
        grpc.StatusCode.INVALID_ARGUMENT,  # a name, label or capacity out of bounds
    )
    if code_of(error) in refusals:
        return JoinRefusedError(details_of(error))
    return to_peer_error(error)
