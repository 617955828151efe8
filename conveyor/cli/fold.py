"""Which log lines of a followed build are shown (`--logs`): every line, a step's lines only if
it fails, or none. Held lines are capped per step, so a step printing 50,000 lines costs the
last few hundred in memory, and what was dropped is counted and said.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor.cli.bounds import AUTO_ALL_MAX_RUNNING_JOBS

LOG_MODES = ("auto", "all", "failed", "none")
HELD_LINES_PER_STEP = 200

StepKey = tuple[str, int, int]  # job, attempt number, step index
# What a view does with lines to show: (job, step name, lines, note); `note` is a fold or drop
# line ("… 1234 lines") said in place of lines, or "".
Emit = Callable[[str, str, list[bytes], str], None]


@dataclass
class _Step:
    name: str
    held: deque[bytes] | None  # None: the step's lines are shown as they come
    total: int = 0
    partial: bytes = b""
    ended: bool = False


@dataclass
class StepLogs:
    """Splits log chunks into lines per step and applies the `--logs` mode.

    With `carriage`, a line keeps only what follows its last carriage return: a progress bar
    redrawn with `\\r` shows its last state instead of every frame.
    """

    mode: str
    emit: Emit
    carriage: bool = False
    _steps: dict[StepKey, _Step] = field(default_factory=dict)

    def chunk(self, key: StepKey, step_name: str, data: bytes, running_jobs: int) -> None:
        step = self._steps.get(key)
        if step is None:
            step = self._steps[key] = _Step(step_name, self._new_hold(running_jobs))
        lines = (step.partial + data).split(b"\n")
        step.partial = lines.pop()
        self._take(key, step, lines)

    def _new_hold(self, running_jobs: int) -> deque[bytes] | None:
        shown = self.mode == "all" or (
            self.mode == "auto" and running_jobs <= AUTO_ALL_MAX_RUNNING_JOBS
        )
        if shown:
            return None
        return deque(maxlen=0 if self.mode == "none" else HELD_LINES_PER_STEP)

    def _take(self, key: StepKey, step: _Step, lines: list[bytes]) -> None:
        if not lines:
            return
        if self.carriage:
            lines = [_last_state(line) for line in lines]
        if step.held is None:
            self.emit(key[0], step.name, lines, "")
            return
        step.held.extend(lines)
        step.total += len(lines)

    def ended(self, key: StepKey, step_name: str, failed: bool) -> None:
        """The step reached a final state: its partial line is a line now; held lines are
        shown if it failed, folded into one line if not."""
        step = self._steps.setdefault(key, _Step(step_name, None))
        if step.ended:
            return
        rest, step.partial = step.partial, b""
        self._take(key, step, [rest] if rest else [])
        step.ended = True
        held = step.held
        if held is None or self.mode == "none":
            return
        if failed:
            dropped = step.total - len(held)
            if dropped:
                self.emit(key[0], step.name, [], f"… {dropped} earlier lines not kept")
            self.emit(key[0], step.name, list(held), "")
            step.held = None  # what still comes for it is shown as it comes
        elif step.total:
            self.emit(key[0], step.name, [], f"… {step.total} lines")
        held.clear()

    def close(self) -> None:
        """The follow ends: steps with no known end show what they hold, as a failed one would
        (the build ended without saying how they went)."""
        for key, step in list(self._steps.items()):
            if not step.ended:
                self.ended(key, step.name, failed=True)


def _last_state(line: bytes) -> bytes:
    """What a terminal would show of a line redrawn with carriage returns."""
    line = line.rstrip(b"\r")
    return line.rpartition(b"\r")[2]
