"""Domain errors; each edge maps each of them to one status of its own (gRPC code, HTTP status)."""


class NotFoundError(LookupError):
    """The build, job, attempt or agent named does not exist."""


class ConflictError(ValueError):
    """Valid request, but the current state forbids it (e.g. retrying a running job)."""


class FencedError(PermissionError):
    """A call about an attempt that is no longer the caller's: its lease was lost or replaced."""


class AuthError(PermissionError):
    """Missing or wrong token."""


class LimitError(ValueError):
    """Storing this would exceed a configured size or count limit."""


class OutOfRangeError(ValueError):
    """A number in the request lies outside the range its field allows (the message names it)."""
