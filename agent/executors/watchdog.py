"""What every real executor does with :class:`StepControl`: end a step early, or signal it.

A stop request gets SIGTERM, then SIGKILL after the grace; a passed deadline gets SIGKILL at once.
The executors differ only in how a signal reaches the step (a container, a process group).

This thread lives in the agent's process; the watchdog *process* (:mod:`agent.watchdog`) is the
one that still kills a step when the agent is frozen. Executors tell it what each step runs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

from agent.executors.base import StepControl, StepEnd, StepResult
from agent.watchdog_link import WatchdogLink

# Bounds how late a stop request or deadline is noticed.
TICK_S = 0.05


def early_end(control: StepControl, what: str) -> StepResult | None:
    """The result for a step that must end before `what` (its process, its container) started."""
    if control.stop.is_set():
        return StepResult(StepEnd.STOPPED, None, f"stopped before {what} started")
    if control.deadline is not None and time.monotonic() >= control.deadline:
        return StepResult(StepEnd.TIMEOUT, None, f"deadline passed before {what} started")
    return None


def unless_lapsed(link: WatchdogLink, attempt_id: int, result: StepResult) -> StepResult:
    """The step's result, unless its lease lapsed meanwhile: then the watchdog process may have
    killed it, and how it ended says nothing about the step (never an exit code to report)."""
    if link.lapsed(attempt_id):
        message = f"the attempt's lease lapsed; its step was killed ({result.message})"
        return StepResult(StepEnd.STOPPED, result.exit_code, message)
    return result


class Watchdog(threading.Thread):
    """Turns ``control.stop`` and ``control.deadline`` into signals for one running step.

    ``repeat_kill_s``: resend SIGKILL this often until :meth:`finish`, for engines that may fail
    to deliver one.
    """

    def __init__(
        self,
        send: Callable[[signal.Signals], None],
        control: StepControl,
        *,
        name: str,
        repeat_kill_s: float | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._send, self._control, self._repeat_kill_s = send, control, repeat_kill_s
        self._finished = threading.Event()
        self.outcome: StepEnd | None = None

    def finish(self) -> None:
        self._finished.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        control = self._control
        while not control.stop.is_set():
            if control.deadline is not None and time.monotonic() >= control.deadline:
                self.outcome = StepEnd.TIMEOUT
                break
            wait_s = TICK_S
            if control.deadline is not None:
                wait_s = min(wait_s, control.deadline - time.monotonic())
            if self._finished.wait(max(0.0, wait_s)):
                return
        else:
            self.outcome = StepEnd.STOPPED
            self._send(signal.SIGTERM)
            # Read now, not at stop: a lost lease cuts the grace to zero while the step runs.
            if self._finished.wait(control.grace_s):
                return
        self._send(signal.SIGKILL)
        if self._repeat_kill_s is None:
            return
        while not self._finished.wait(self._repeat_kill_s):
            self._send(signal.SIGKILL)
