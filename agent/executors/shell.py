"""Host-process implementation of :class:`agent.executors.base.Executor`: no isolation at all.

Each step is ``sh -e -c SCRIPT`` in its own process group, with the attempt's workspace directory
as working directory. stdout and stderr share one pipe, so their order is exactly as written. The
process group stands in for the container: stopping signals the whole group, and once the
script's shell has exited anything it left running in the group is killed, as Docker would.

For machines without Docker and for measuring the farm's own overhead; the operator must ask for
it (``conveyor agent --executor shell``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import (
    SHELL_DRAIN_AFTER_EXIT_S,
    SHELL_PATH,
    SHELL_READ_BYTES,
    SHELL_TICK_S,
)
from agent.executors.base import (
    AttemptInfo,
    Executor,
    StepControl,
    StepEnd,
    StepRequest,
    StepResult,
)
from agent.executors.host_workspace import HostWorkspaces
from agent.executors.watchdog import Watchdog, early_end, unless_lapsed
from agent.watchdog import PGID
from agent.watchdog_link import WatchdogLink, shared

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

# Every step process carries its workspace here; remove_leftovers finds orphans by it.
WORKSPACE_VAR = "CONVEYOR_WORKSPACE"
_TICK_MS = int(SHELL_TICK_S * 1000)


def _pipe_size() -> int:
    """The output pipe's size: the read size, or the system's limit if that is less (-1: the
    default size)."""
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return -1
    return min(SHELL_READ_BYTES, limit)


def _exit_code(returncode: int) -> int:
    """Shell convention (128 + signal) for a signalled process, as Docker reports it."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _pump(process: subprocess.Popen[bytes], on_output: Callable[[bytes], None]) -> None:
    """Delivers the merged output until EOF, or shortly after the script's shell has exited.

    Leftover processes of the group are killed when the shell exits; a process that left the
    group (setsid) could hold the pipe open forever, so reading stops a little later regardless.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    exited_at: float | None = None
    while True:
        if poller.poll(_TICK_MS):
            data = os.read(fd, SHELL_READ_BYTES)
            if not data:
                return
            on_output(data)
        elif exited_at is None:
            if process.poll() is not None:
                _signal_group(process.pid, signal.SIGKILL)
                exited_at = time.monotonic()
        elif time.monotonic() - exited_at > SHELL_DRAIN_AFTER_EXIT_S:
            log.warning(
                "step process %d exited but its output stays open; ignoring the rest", process.pid
            )
            return


class ShellExecutor(HostWorkspaces, Executor):
    """Runs steps as host processes under ``root/<attempt id>``; contracts are :class:`Executor`'s.

    ``root`` must belong to this agent alone: :meth:`remove_leftovers` empties it.
    """

    def __init__(self, root: Path, watchdog: WatchdogLink | None = None) -> None:
        super().__init__(root)
        self._watchdog = watchdog or shared()

    def run_step(
        self,
        attempt: AttemptInfo,
        step: StepRequest,
        on_output: Callable[[bytes], None],
        control: StepControl,
    ) -> StepResult:
        early = early_end(control, "the step")
        if early is not None:
            return early
        workspace = self.workspace(attempt)
        env = {"PATH": SHELL_PATH, "HOME": str(workspace), **step.env}
        env[WORKSPACE_VAR] = str(workspace)
        try:
            process = subprocess.Popen(
                ["sh", "-e", "-c", step.run],
                cwd=workspace,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pipesize=_pipe_size(),
                start_new_session=True,  # its own process group, which stop and cleanup signal
            )
        except OSError as exc:
            return StepResult(StepEnd.ERROR, None, f"could not start step {step.index}: {exc}")
        target = (PGID, str(process.pid))
        self._watchdog.hold(attempt.attempt_id, target)
        result = self._supervise(
            process, on_output, control, lambda: self._watchdog.drop(attempt.attempt_id, target)
        )
        return unless_lapsed(self._watchdog, attempt.attempt_id, result)

    def _supervise(
        self,
        process: subprocess.Popen[bytes],
        on_output: Callable[[bytes], None],
        control: StepControl,
        unwatch: Callable[[], None],
    ) -> StepResult:
        watchdog = Watchdog(
            lambda signum: _signal_group(process.pid, signum),
            control,
            name=f"conveyor-shell-watchdog-{process.pid}",
        )
        watchdog.start()
        try:
            try:
                _pump(process, on_output)
            except OSError as exc:
                return StepResult(StepEnd.ERROR, None, f"reading the step's output failed: {exc}")
            code = _exit_code(process.wait())
        finally:
            watchdog.finish()
            # Like a removed container: nothing of the step outlives run_step.
            _signal_group(process.pid, signal.SIGKILL)
            # Before the reap: until then the group's id cannot be reused by another process.
            unwatch()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        detail = f"exit code {code}"
        if watchdog.outcome is StepEnd.STOPPED:
            return StepResult(StepEnd.STOPPED, code, f"stopped on request ({detail})")
        if watchdog.outcome is StepEnd.TIMEOUT:
            return StepResult(StepEnd.TIMEOUT, code, f"deadline passed; killed ({detail})")
        return StepResult(StepEnd.EXITED, code, detail)

    def remove_leftovers(self, agent_name: str) -> int:
        """Kills processes still running in this agent's workspaces and removes the workspaces.

        Returns how many processes were killed.
        """
        killed = _kill_processes_under(self.root)
        self.remove_workspaces(agent_name)
        log.info("removed %d leftover step processes of agent %r", killed, agent_name)
        return killed


def _kill_processes_under(root: Path) -> int:
    """SIGKILLs every process whose initial environment puts its workspace under ``root``."""
    prefix = f"{WORKSPACE_VAR}={root}{os.sep}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(item.startswith(prefix) for item in environ.split(b"\0")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed
