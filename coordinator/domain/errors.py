"""Domain errors; each edge maps each of them to one status of its own (gRPC code, HTTP status)."""


class NotFoundError(LookupError):
    """The build, job, attempt or agent named does not exist."""


class ConflictError(ValueError):
    """Valid request, but the current state forbids it (e.g. retrying a running job)."""


class AlreadyExistsError(ConflictError):
    """The name (of an agent, an artifact...) is taken by something else that must be kept."""


class FencedError(PermissionError):
    """A call about an attempt that is no longer the caller's: its lease was lost or replaced."""


class AuthError(PermissionError):
    """Missing or wrong token."""


class RoleError(PermissionError):
    """A known token whose role may not do this; nothing was changed."""


class LimitError(ValueError):
    """Storing this would exceed a configured size or count limit."""


class ExhaustedError(RuntimeError):
    """The caller already holds as much of a shared resource as one client may (streams open at
    once): nothing was done, and the same call may succeed once it lets some go."""


class StorageExhaustedError(RuntimeError):
    """The coordinator's storage could not take a write (disk full, quota, an I/O error): nothing
    of it was recorded, and the same call may succeed once space returns. Callers retry."""


class DataLossError(RuntimeError):
    """Stored data is shorter than what was already served from it: it was truncated or replaced
    behind the coordinator's back."""


class OutOfRangeError(ValueError):
    """A number in the request lies outside the range its field allows (the message names it)."""


class SealError(ValueError):
    """A sealed secret that does not open with this coordinator's key (another key, or damaged)."""


class RangeError(OutOfRangeError):
    """A log range that starts past the log's end: the caller asked for bytes that are not
    there (yet); the message says how long the log is."""


class GitError(ValueError):
    """A git command on a watched repository failed (unreachable, no such commit, timed out);
    the message is git's own last line."""
