"""Long-lived loops that survive a failed pass, and a supervisor that restarts a loop that dies.

A pass that raises (the database's disk full for a few seconds, a lost connection) is logged with
its exception and tried again after a growing, jittered backoff; the loop goes on. A loop that
ends anyway while it should run is restarted and logged; one that keeps dying raises `LoopDied`,
and the server stops rather than run on without it (a coordinator without its reaper leaves jobs
`running` forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from coordinator.config import (
    LOOP_RESTART_WINDOW_S,
    LOOP_RESTARTS_MAX,
    LOOP_RETRY_INITIAL_S,
    LOOP_RETRY_JITTER,
    LOOP_RETRY_MAX_S,
)
from coordinator.domain.errors import DataLossError, StorageExhaustedError

LOGGER = logging.getLogger(__name__)


class LoopDied(RuntimeError):
    """A supervised loop died more often than its restart budget allows."""


@dataclass(frozen=True)
class Backoff:
    initial_s: float = LOOP_RETRY_INITIAL_S
    max_s: float = LOOP_RETRY_MAX_S
    jitter: float = LOOP_RETRY_JITTER

    def delay(self, failures: int) -> float:
        """The wait after `failures` (≥ 1) failures in a row."""
        base = min(self.max_s, self.initial_s * 2.0 ** min(failures - 1, 32))
        return float(base * (1 + random.uniform(0, self.jitter)))


DEFAULT_BACKOFF = Backoff()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def every(
    name: str,
    period_s: float,
    one_pass: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> None:
    """Runs `one_pass` every `period_s` until `stop` is set; a failed pass is logged and retried
    after a backoff, never the end of the loop."""
    failures = 0
    while not stop.is_set():
        try:
            await one_pass()
        except Exception as error:
            failures += 1
            delay = backoff.delay(failures)
            _log_failed_pass(name, failures, delay, error)
        else:
            if failures:
                LOGGER.info("%s: pass succeeded again after %d failed", name, failures)
            failures = 0
            delay = period_s
        await _sleep_unless(stop, delay)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    restarts_max: int = LOOP_RESTARTS_MAX,
    window_s: float = LOOP_RESTART_WINDOW_S,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> None:
    """Runs the loop `run` until `stop` is set, restarting it (logged) whenever it ends or raises
    before that; raises LoopDied once it died more than `restarts_max` times within `window_s`."""
    deaths: list[float] = []
    while True:
        try:
            await run()
        except Exception:
            if stop.is_set():
                LOGGER.exception("%s: failed while stopping", name)
                return
            LOGGER.exception("%s: loop died", name)
        else:
            if stop.is_set():
                return
            LOGGER.error("%s: loop ended while the coordinator runs", name)
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < window_s] + [now]
        if len(deaths) > restarts_max:
            raise LoopDied(
                f"{name} died {len(deaths)} times within {window_s:.0f} s; stopping the coordinator"
            )
        delay = backoff.delay(len(deaths))
        LOGGER.warning("%s: restarting in %.1f s (death %d)", name, delay, len(deaths))
        await _sleep_unless(stop, delay)
        if stop.is_set():
            return


def _log_failed_pass(name: str, failures: int, delay: float, error: Exception) -> None:
    if isinstance(error, (StorageExhaustedError, DataLossError)):
        # The operator's business (a full disk, a damaged database), not a bug: one line.
        LOGGER.error(
            "%s: pass failed (%d in a row): %s; trying again in %.1f s",
            name,
            failures,
            error,
            delay,
        )
        return
    LOGGER.exception("%s: pass failed (%d in a row); trying again in %.1f s", name, failures, delay)
