"""An executor that runs nothing: each step's script is read by a tiny sh (:mod:`.fakesh`).

For tests of the farm itself (leases, retries, cancels, logs, the DAG) on machines without
Docker, and quicker than any process: ``conveyor agent --executor fake``. It keeps the
:class:`Executor` contract (output, exit codes, workspaces, stop, grace and deadline) for the
scripts it understands; a script it does not understand fails, naming what it did not know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.executors.base import (
    AttemptInfo,
    Executor,
    StepControl,
    StepEnd,
    StepRequest,
    StepResult,
)
from agent.executors.fakesh import KILL_EXIT, Killed, Shell
from agent.executors.fakesh_builtins import BUILTINS
from agent.executors.host_workspace import HostWorkspaces
from agent.executors.watchdog import early_end

log = logging.getLogger(__name__)

# What a step sees besides its own env: no variable of the agent's.
BASE_ENV = {"HOME": "/workspace", "PATH": "/usr/bin:/bin"}


class FakeExecutor(HostWorkspaces, Executor):
    """Interprets steps on the calling thread; workspaces are directories under ``root``."""

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
        env = {**BASE_ENV, **step.env}
        shell = Shell(self.workspace(attempt), env, control, on_output, BUILTINS)
        try:
            code = shell.execute(step.run)
        except Killed as killed:
            return StepResult(killed.end, KILL_EXIT, f"{killed} (exit code {KILL_EXIT})")
        detail = f"exit code {code}"
        if shell.terminated:
            return StepResult(StepEnd.STOPPED, code, f"stopped on request ({detail})")
        return StepResult(StepEnd.EXITED, code, detail)

    def remove_leftovers(self, agent_name: str) -> int:
        """Removes the workspaces; no step outlives its agent here, so none is ever left."""
        self.remove_workspaces(agent_name)
        return 0
