"""The agent's side of its watchdog process (:mod:`agent.watchdog`): orders down a pipe.

Lease renewals arm a deadline per attempt; executors say what each attempt runs (a container, a
process group). The link keeps the same deadlines locally, so the agent can tell, after the
fact, that its watchdog may have killed a step: an attempt whose deadline passed while it held
something is *lapsed* for good, its ``on_lapse`` is called once, and a renewal that arrives
later does not revive it (the step may be dead already; the coordinator is about to give the job
away, or has). A deadline passing between steps lapses nothing: nothing ran that could overlap.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from agent.watchdog import Target

LOGGER = logging.getLogger(__name__)


def spawn_watchdog() -> IO[bytes]:
    """Starts the watchdog process and returns the pipe to its stdin."""
    # It logs at the agent's own level: `conveyor exec` keeps the agent's accounts quiet.
    level = logging.getLevelName(logging.getLogger("agent").getEffectiveLevel())
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.watchdog", level],
        stdin=subprocess.PIPE,
        # Its own session: a signal to the agent's process group (Ctrl-C) does not end it.
        start_new_session=True,
    )
    assert process.stdin is not None
    LOGGER.info("watchdog process %d started", process.pid)
    return process.stdin


@dataclass
class _Local:
    deadline: float | None = None
    targets: set[Target] = field(default_factory=set)
    on_lapse: Callable[[], None] | None = None
    lapsed: bool = False


class WatchdogLink:
    """Thread-safe; the process starts with the first order and is restarted if it dies."""

    def __init__(
        self,
        start: Callable[[], IO[bytes]] = spawn_watchdog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start, self._clock = start, clock
        self._pipe: IO[bytes] | None = None
        self._local: dict[int, _Local] = {}
        self._lock = threading.Lock()

    def arm(self, attempt_id: int, deadline: float, on_lapse: Callable[[], None]) -> None:
        """Kill `attempt_id`'s steps at `deadline` (monotonic) unless armed again before."""
        with self._lock:
            entry = self._local.setdefault(attempt_id, _Local())
            entry.on_lapse = on_lapse
            if not self._check(entry):
                entry.deadline = deadline
                self._send({"attempt": attempt_id, "deadline": deadline})
        self.lapsed(attempt_id)

    def hold(self, attempt_id: int, target: Target) -> None:
        """`attempt_id` now runs `target`; killed at once when the attempt has lapsed."""
        with self._lock:
            entry = self._local.setdefault(attempt_id, _Local())
            entry.targets.add(target)
            self._send({"attempt": attempt_id, "hold": list(target)})
        self.lapsed(attempt_id)

    def drop(self, attempt_id: int, target: Target) -> None:
        with self._lock:
            entry = self._local.get(attempt_id)
            if entry is None or target not in entry.targets:
                return
            self._check(entry)  # held until now: a deadline already passed has lapsed it
            entry.targets.discard(target)
            self._send({"attempt": attempt_id, "drop": list(target)})
        self.lapsed(attempt_id)

    def release(self, attempt_id: int) -> None:
        with self._lock:
            if self._local.pop(attempt_id, None) is not None:
                self._send({"attempt": attempt_id, "release": True})

    def lapsed(self, attempt_id: int) -> bool:
        """Whether the attempt's deadline passed (then its ``on_lapse`` has been called)."""
        with self._lock:
            entry = self._local.get(attempt_id)
            if entry is None or not self._check(entry):
                return False
            callback, entry.on_lapse = entry.on_lapse, None
        if callback is not None:
            callback()
        return True

    def close(self) -> None:
        """Ends the link: the watchdog kills what it still holds at its deadlines, then exits."""
        with self._lock:
            if self._pipe is not None:
                self._close_pipe()

    def _check(self, entry: _Local) -> bool:
        # As the watchdog decides: only a deadline passing while something is held lapses.
        if (
            not entry.lapsed
            and entry.targets
            and entry.deadline is not None
            and self._clock() >= entry.deadline
        ):
            entry.lapsed = True
        return entry.lapsed

    def _send(self, order: dict[str, object]) -> None:
        line = json.dumps(order).encode() + b"\n"
        try:
            self._write(line)
        except OSError as error:
            # The watchdog died: a new one gets the whole state (this order is part of it).
            LOGGER.error("the watchdog process is gone (%s); starting another", error)
            self._close_pipe()
            try:
                self._write(self._replay())
            except OSError as again:  # the next order tries again; the in-process stop remains
                LOGGER.error("could not restart the watchdog process: %s", again)
                self._close_pipe()

    def _write(self, data: bytes) -> None:
        if self._pipe is None:
            self._pipe = self._start()
        self._pipe.write(data)
        self._pipe.flush()

    def _replay(self) -> bytes:
        orders: list[dict[str, object]] = []
        for attempt_id, entry in self._local.items():
            if entry.deadline is not None:
                orders.append({"attempt": attempt_id, "deadline": entry.deadline})
            orders.extend({"attempt": attempt_id, "hold": list(t)} for t in sorted(entry.targets))
        return b"".join(json.dumps(order).encode() + b"\n" for order in orders)

    def _close_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                LOGGER.debug("closing the watchdog's pipe failed", exc_info=True)


# Cheap to make: the process starts only with the first order.
_SHARED = WatchdogLink()


def shared() -> WatchdogLink:
    """The one link of this agent process, shared by its lease keeper and its executor."""
    return _SHARED
