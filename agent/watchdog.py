"""The agent's watchdog: a separate process that kills a step once its attempt's lease lapses.

The agent's own threads cannot be trusted to stop a step in time: a frozen agent (SIGSTOP, a
stalled VM, swap) schedules none of them, while the coordinator re-queues the job at lease expiry
and another agent starts it. This process does not share the agent's fate: it only reads the
agent's orders from its stdin and keeps a clock.

Orders, one JSON object per line:

- ``{"attempt": A, "deadline": T}``: kill A's steps at ``T`` (monotonic seconds) unless a later
  deadline arrives first. A deadline that comes after A lapsed changes nothing; A lapses only
  if it holds something when its deadline passes.
- ``{"attempt": A, "hold": [KIND, ID]}`` / ``{"attempt": A, "drop": [KIND, ID]}``: what A runs
  now: ``["docker", CONTAINER_ID]`` or ``["pgid", PROCESS_GROUP]``.
- ``{"attempt": A, "release": true}``: A is over; forget it.

When stdin ends (the agent died) nobody can renew anything: every attempt is killed at its last
deadline (at once if it has none), and the process exits when nothing is left to kill.
CLOCK_MONOTONIC is system-wide, so the agent's deadlines mean the same instant here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.config import WATCHDOG_EXIT_AFTER_EOF_S, WATCHDOG_TICK_S

if TYPE_CHECKING:
    import docker

LOGGER = logging.getLogger("agent.watchdog")

DOCKER = "docker"
PGID = "pgid"
# What to kill: (DOCKER, container id) or (PGID, process group id as text).
Target = tuple[str, str]


@dataclass
class _Attempt:
    deadline: float | None = None
    targets: set[Target] = field(default_factory=set)
    lapsed: bool = False


class Ledger:
    """What the watchdog holds and when it is due; no I/O, the clock is passed in."""

    def __init__(self) -> None:
        self._attempts: dict[int, _Attempt] = {}
        self.orphaned = False  # the agent is gone: nobody renews, nobody releases

    def apply(self, order: dict[str, object]) -> None:
        """One order from the agent; malformed ones raise ValueError (and change nothing)."""
        attempt_id = order.get("attempt")
        if not isinstance(attempt_id, int):
            raise ValueError(f"order without an attempt: {order!r}")
        if order.get("release"):
            self._attempts.pop(attempt_id, None)
            return
        entry = self._attempts.setdefault(attempt_id, _Attempt())
        if "deadline" in order:
            deadline = order["deadline"]
            if not isinstance(deadline, int | float):
                raise ValueError(f"deadline is not a number: {order!r}")
            if not entry.lapsed:
                entry.deadline = float(deadline)
        for key in ("hold", "drop"):
            if key in order:
                target = _target(order[key])
                if key == "hold":
                    entry.targets.add(target)
                else:
                    entry.targets.discard(target)

    def orphan(self) -> None:
        self.orphaned = True

    def due(self, now: float) -> list[tuple[int, Target]]:
        """Targets to kill now. An attempt whose deadline passes while it holds something stays
        lapsed (a later hold is due at once); one that held nothing then lapses nothing: its
        finished steps wait for the coordinator, and a later renewal arms it again."""
        found: list[tuple[int, Target]] = []
        for attempt_id, entry in self._attempts.items():
            if entry.deadline is not None and now >= entry.deadline and entry.targets:
                entry.lapsed = True
            if entry.lapsed or (self.orphaned and entry.deadline is None):
                found.extend((attempt_id, target) for target in sorted(entry.targets))
        return found

    def killed(self, attempt_id: int, target: Target) -> None:
        entry = self._attempts.get(attempt_id)
        if entry is not None:
            entry.targets.discard(target)

    def next_deadline(self) -> float | None:
        pending = [
            e.deadline
            for e in self._attempts.values()
            if e.deadline is not None and not e.lapsed and e.targets
        ]
        return min(pending, default=None)

    def holds_anything(self) -> bool:
        return any(entry.targets for entry in self._attempts.values())


def _target(value: object) -> Target:
    if (
        isinstance(value, list)
        and len(value) == 2
        and value[0] in (DOCKER, PGID)
        and isinstance(value[1], str)
        and value[1]
    ):
        return (value[0], value[1])
    raise ValueError(f"not a target: {value!r}")


class Killer:
    """Kills targets for real: Docker containers through the engine, process groups by signal."""

    def __init__(self) -> None:
        self._docker: docker.APIClient | None = None

    def kill(self, target: Target) -> bool:
        """True once the target is gone (or never existed); False to try again later."""
        kind, ident = target
        if kind == PGID:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(ident), signal.SIGKILL)
            return True
        return self._kill_container(ident)

    def _kill_container(self, container_id: str) -> bool:
        import docker  # only a watchdog that holds a container needs the SDK
        from docker.errors import APIError, NotFound

        try:
            if self._docker is None:
                self._docker = docker.from_env().api
            api = self._docker
            try:
                api.kill(container_id)
            except NotFound:
                return True
            except APIError as error:
                # 409: it is not running (exited, or not started yet); removing ends it all.
                if error.status_code != 409:
                    raise
            with contextlib.suppress(NotFound):
                api.remove_container(container_id, v=True, force=True)
        except (docker.errors.DockerException, OSError) as error:
            LOGGER.warning("could not remove container %s: %s", container_id[:12], error)
            return False
        return True


class Watchdog:
    """Reads orders from `fd` and kills what lapses; :meth:`run` returns once orphaned and idle."""

    def __init__(
        self,
        fd: int,
        ledger: Ledger,
        kill: Callable[[Target], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fd, self._ledger, self._kill, self._clock = fd, ledger, kill, clock
        self._pending = b""

    def run(self) -> None:
        orphaned_at: float | None = None
        while True:
            self._kill_due()
            if self._ledger.orphaned:
                if orphaned_at is None:
                    orphaned_at = self._clock()
                idle = not self._ledger.holds_anything()
                if idle or self._clock() - orphaned_at > WATCHDOG_EXIT_AFTER_EOF_S:
                    return
            self._wait_and_read()

    def _kill_due(self) -> None:
        for attempt_id, target in self._ledger.due(self._clock()):
            LOGGER.warning(
                "the lease of attempt %d lapsed; killing %s %s",
                attempt_id,
                target[0],
                target[1],
            )
            if self._kill(target):
                self._ledger.killed(attempt_id, target)

    def _wait_and_read(self) -> None:
        timeout_s = WATCHDOG_TICK_S
        deadline = self._ledger.next_deadline()
        if deadline is not None:
            timeout_s = max(0.0, min(timeout_s, deadline - self._clock()))
        if self._ledger.orphaned:
            time.sleep(timeout_s)
            return
        readable, _, _ = select.select([self._fd], [], [], timeout_s)
        if readable:
            self._read()

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except OSError as error:
            LOGGER.error("reading orders failed: %s", error)
            data = b""
        if not data:
            LOGGER.info("the agent has gone; what it still runs is killed at its deadlines")
            self._ledger.orphan()
            return
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            try:
                self._ledger.apply(json.loads(line))
            except (ValueError, AttributeError) as error:
                LOGGER.error("ignoring a bad order: %s", error)


def main() -> None:
    # The agent passes its own level; anything else (or none) is INFO, never a failed start.
    given = sys.argv[1] if len(sys.argv) > 1 else ""
    level = given if given in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Watchdog(sys.stdin.fileno(), Ledger(), Killer().kill).run()


if __name__ == "__main__":
    main()
