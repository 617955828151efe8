"""Keeps the agent's leases: renews them on their own thread and stops attempts it cannot renew.

The agent stops an attempt's containers itself once it has gone LEASE_SAFETY of the TTL without a
confirmed renewal, measured on the monotonic clock from when the last successful renewal was
*sent*. The coordinator's lease runs from when it *processed* that renewal, so the agent always
gives up first: never two live containers for one job, even across a network cut.

Only an attempt that is running a step is stopped so. Before, between and after its steps no
container lives that could run beside another agent's, and everything the attempt still has to
say (a step's end, artifacts, its result) is fenced by the coordinator: kept, it is reported
when the coordinator is back (a coordinator restart gives every running attempt a fresh TTL),
or refused there if the job went elsewhere meanwhile. Giving such an attempt up threw away
finished work, which its retry then ran a second time.

Those threads stop nothing while the agent itself is frozen, so every renewal also arms the
watchdog process (:mod:`agent.watchdog`), which kills the steps before the lease can expire; it
too stops only what runs (a deadline passing while nothing is held lapses nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent import watchdog_link
from agent.attempt import AttemptRunner
from agent.config import WATCHDOG_MARGIN_MAX_SHARE, WATCHDOG_MARGIN_S
from agent.peer import LeaseState, Peer
from agent.watchdog_link import WatchdogLink

LOGGER = logging.getLogger(__name__)

# Fraction of the TTL the agent waits without a confirmed renewal before stopping an attempt.
LEASE_SAFETY = 0.75
# How often the watchdog looks at the leases.
WATCHDOG_PERIOD_S = 0.1


class LeaseKeeper:
    def __init__(
        self,
        peer: Peer,
        runners: Callable[[], list[AttemptRunner]],
        abort: threading.Event,
        *,
        ttl_s: float,
        interval_s: float,
        watchdog: WatchdogLink | None = None,
    ) -> None:
        self._peer = peer
        self._runners = runners
        self._abort = abort
        self._give_up_after_s = ttl_s * LEASE_SAFETY
        self._interval_s = interval_s
        self._confirmed: dict[int, float] = {}
        self._lock = threading.Lock()
        self._watchdog = watchdog or watchdog_link.shared()
        self._kill_after_s = ttl_s - min(WATCHDOG_MARGIN_S, ttl_s * WATCHDOG_MARGIN_MAX_SHARE)

    def track(self, attempt_id: int, since: float) -> None:
        """A new lease, granted about `since` (monotonic: when its assignment arrived)."""
        with self._lock:
            self._confirmed[attempt_id] = since
        self._arm_watchdog(attempt_id, since)

    def fresh(self, attempt_id: int) -> bool:
        """Whether a step of this attempt may start: its last confirmed renewal is recent
        enough that the watchdog would not stop the step at once (True when untracked)."""
        with self._lock:
            confirmed = self._confirmed.get(attempt_id)
        return confirmed is None or time.monotonic() - confirmed <= self._give_up_after_s

    def forget(self, attempt_id: int) -> None:
        with self._lock:
            self._confirmed.pop(attempt_id, None)
        self._watchdog.release(attempt_id)

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True),
            threading.Thread(target=self._watchdog_loop, name="lease-watchdog", daemon=True),
        ]
        for thread in threads:
            thread.start()
        return threads

    def _renew_loop(self) -> None:
        while not self._abort.wait(self._interval_s):
            runners = {runner.lease.attempt_id: runner for runner in self._runners()}
            if runners:
                self._renew(runners)

    def _renew(self, runners: dict[int, AttemptRunner]) -> None:
        sent = time.monotonic()
        leases = [runner.lease for runner in runners.values()]
        try:
            # One try per interval: a renewal that cannot get through is replaced by the next.
            statuses = self._peer.renew_leases(leases, timeout_s=self._interval_s)
        except Exception as error:  # logged; the watchdog decides
            LOGGER.warning("lease renewal failed: %s", error)
            return
        for status in statuses:
            runner = runners.get(status.attempt_id)
            if runner is None:
                continue
            if status.state is LeaseState.LOST:
                LOGGER.warning(
                    "attempt %d: the coordinator says the lease is lost; stopping it",
                    status.attempt_id,
                )
                runner.lose()
                continue
            with self._lock:
                tracked = status.attempt_id in self._confirmed
                if tracked:
                    self._confirmed[status.attempt_id] = sent
            if tracked:
                self._arm_watchdog(status.attempt_id, sent)
            if status.state is LeaseState.CANCEL:
                runner.cancel()

    def _watchdog_loop(self) -> None:
        while not self._abort.wait(WATCHDOG_PERIOD_S):
            now = time.monotonic()
            for runner in self._runners():
                with self._lock:
                    confirmed = self._confirmed.get(runner.lease.attempt_id)
                if (
                    confirmed is not None
                    and now - confirmed > self._give_up_after_s
                    and runner.running_step
                ):
                    if not runner.lost:
                        LOGGER.warning(
                            "attempt %d: lease not renewed for %.1fs; stopping it "
                            "before the coordinator gives the job to another agent",
                            runner.lease.attempt_id,
                            now - confirmed,
                        )
                    runner.lose()

    # --- the watchdog process: stops steps even while this process is frozen ---

    def _arm_watchdog(self, attempt_id: int, sent: float) -> None:
        """Kill by the renewal's send time + TTL - margin: before the coordinator's lease ends."""
        self._watchdog.arm(attempt_id, sent + self._kill_after_s, lambda: self._lapsed(attempt_id))

    def _lapsed(self, attempt_id: int) -> None:
        for runner in self._runners():
            if runner.lease.attempt_id == attempt_id and not runner.lost:
                LOGGER.warning(
                    "attempt %d: its lease lapsed (the watchdog kills its steps); stopping it",
                    attempt_id,
                )
                runner.lose()
