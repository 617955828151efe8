"""The executor contract: how an agent runs the steps of an attempt, whatever runs them.

The agent's attempt runner codes against :class:`Executor`. Implementations: :mod:`.docker` (a
container per step, the default), :mod:`.shell` (host processes, unisolated) and :mod:`.fake`
(nothing runs; for tests of the farm itself). One attempt's steps share one workspace; what
every implementation must do is tested once for all of them in ``tests/executor/test_contract.py``.
"""

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class AttemptInfo:
    """Identity of one attempt (one execution of a job on one agent)."""

    attempt_id: int
    build_id: int
    job_name: str
    agent_name: str


@dataclass(frozen=True)
class StepRequest:
    """One step to run inside the attempt's workspace."""

    index: int  # 0-based position in the job
    name: str
    image: str
    run: str  # shell script, run with `sh -e -c` (the fake executor reads a subset of sh)
    # Holds the job's secrets too, so it is never part of a printed request.
    env: Mapping[str, str] = field(repr=False)
    user: str = ""  # run as this user (name or uid[:gid]); "": the image's (Docker only)
    privileged: bool = False  # the job asks for a privileged container (Docker only)


class StepEnd(StrEnum):
    """Why a step ended."""

    EXITED = "exited"  # the process ended by itself; see exit_code
    TIMEOUT = "timeout"  # deadline passed; container killed
    STOPPED = "stopped"  # stop requested; SIGTERM, grace, SIGKILL
    IMAGE_PULL_FAILED = "image_pull_failed"
    OOM_KILLED = "oom_killed"  # the container hit its memory limit and the kernel killed it
    ERROR = "error"  # the executor itself failed (Docker API error...)


@dataclass(frozen=True)
class StepResult:
    """Outcome of :meth:`Executor.run_step`."""

    end: StepEnd
    exit_code: int | None  # container exit code when known
    # Human detail, e.g. "image 'nope:1' is not available locally and could not be pulled: ..."
    message: str


@dataclass
class StepControl:
    """How another thread steers a running step."""

    # Set by another thread: end the step gracefully (SIGTERM, grace, SIGKILL).
    stop: threading.Event
    deadline: float | None = None  # time.monotonic() value; past it the container is killed
    grace_s: float = 3.0  # SIGTERM -> SIGKILL delay when stopping


class ExecutorError(Exception):
    """The execution backend failed in a method that has no result to report it in.

    Raised by :meth:`Executor.prepare_attempt`, :meth:`Executor.cleanup_attempt` and
    :meth:`Executor.remove_leftovers`; :meth:`Executor.run_step` reports failures in its
    :class:`StepResult` instead.
    """


class FileKind(StrEnum):
    FILE = "file"
    SYMLINK = "symlink"
    OTHER = "other"  # a directory, device, fifo...: never an artifact


@dataclass(frozen=True)
class WorkspaceFile:
    """One entry read from a workspace: for a FILE, `chunks` yields its bytes exactly once."""

    name: str  # relative to the workspace, '/'-separated
    kind: FileKind
    size: int
    mode: int  # permission bits
    link_target: str  # for a SYMLINK, as stored in the link
    chunks: Iterator[bytes]


class WorkspaceReader(Protocol):
    """Read access to one attempt's workspace, open for the duration of a `with` block."""

    def names(self) -> list[str]:
        """Relative names of every regular file and symlink, in no particular order."""
        ...

    def read(self, name: str) -> AbstractContextManager[WorkspaceFile]:
        """Streams one entry; raises :class:`ExecutorError` when it cannot be read."""
        ...


class Executor(Protocol):
    """Runs the steps of attempts, each step in its own container (or what stands in for one:
    a process group, nothing at all), the steps of one attempt sharing its workspace.

    Every method blocks the calling thread until its work is done. Methods may be called from
    several threads at once for *different* attempts; one attempt's calls must not overlap.
    """

    def prepare_attempt(self, attempt: AttemptInfo) -> None:
        """Create the attempt's empty workspace, replacing any leftover of the same attempt.

        Call once before the attempt's first step. Calling it again resets the workspace.
        Raises :class:`ExecutorError` when the backend fails.
        """
        ...

    def run_step(
        self,
        attempt: AttemptInfo,
        step: StepRequest,
        on_output: Callable[[bytes], None],
        control: StepControl,
    ) -> StepResult:
        """Run one step to its end and report how it ended.

        Blocks until the step's process has ended and its container is gone. ``on_output`` is
        called on the *calling* thread with the step's combined stdout and stderr, as raw bytes in
        the exact order written (never decoded, chunk boundaries arbitrary); all output has been
        delivered when this returns. If ``on_output`` blocks, reading output pauses (the step may
        then block on a full pipe), which is how callers apply back-pressure.

        The step sees ``step.env`` over the executor's own minimal base (PATH...), never the
        agent's environment. A script that fails (``sh -e``) ends the step with its exit code.

        ``control.stop`` (set from another thread) ends the step gracefully -> ``STOPPED``:
        SIGTERM, which the script may trap (its exit code is reported; 143 when untrapped), then
        SIGKILL after ``control.grace_s`` (137). Passing ``control.deadline`` kills it at once ->
        ``TIMEOUT`` (137). Both take effect within a fraction of a second, even before the
        container has started. Backend failures are returned as
        ``ERROR`` (or ``IMAGE_PULL_FAILED``) rather than raised; exceptions raised by
        ``on_output`` propagate after the container has been removed.
        """
        ...

    def cleanup_attempt(self, attempt: AttemptInfo) -> None:
        """Remove every container and the workspace of the attempt.

        Idempotent: anything already gone is not an error. Raises :class:`ExecutorError` only
        when the backend fails.
        """
        ...

    def remove_leftovers(self, agent_name: str) -> int:
        """Remove all containers and workspaces this agent name ever created.

        Meant for agent start-up, after a crash, when no attempt of this agent is running.
        Returns how many containers were removed. Raises :class:`ExecutorError` when the backend
        fails.
        """
        ...

    def open_workspace(self, attempt: AttemptInfo) -> AbstractContextManager[WorkspaceReader]:
        """Read files out of the attempt's workspace (to collect artifacts) without a step.

        Streams: no file is ever held whole in memory. Raises :class:`ExecutorError`.
        """
        ...

    def import_tar(self, attempt: AttemptInfo, chunks: Iterable[bytes]) -> None:
        """Unpack a tar stream into the attempt's workspace (sources, needed artifacts).

        Exceptions raised by ``chunks`` propagate; backend failures raise :class:`ExecutorError`.
        Paths in the tar are relative to the workspace; the backend keeps them inside it.
        """
        ...
