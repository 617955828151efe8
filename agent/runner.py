"""The agent's loops: register, long-poll for work, keep leases, run attempts on threads.

Stopping: the first stop() drains (no new work; running attempts finish, leases still renewed),
the second abandons running attempts (their steps get SIGTERM, grace, SIGKILL; they end
agent_stopped and are retried per their job's rule). An operator's drain works like the first.
"""

from __future__ import annotations

import logging
import threading
import time

from agent.attempt import AttemptRunner
from agent.config import WORK_DIR_CHECK_S, AgentConfig
from agent.credential import CredentialFile
from agent.executors.base import Executor, ExecutorError
from agent.leases import LeaseKeeper
from agent.peer import (
    AgentInfo,
    Assignment,
    JoinRefusedError,
    Lease,
    Peer,
    PeerError,
    Registration,
)
from agent.workroom import WorkDirRoom

LOGGER = logging.getLogger(__name__)

# After a poll failed with a coordinator fault (not an outage, which is retried inside the call),
# wait this long before the next one.
POLL_FAULT_PAUSE_S = 5.0


class Agent:
    """One agent process's work; it owns `peer` and closes it when :meth:`run` ends."""

    def __init__(self, config: AgentConfig, executor: Executor, peer: Peer) -> None:
        self.config = config
        self._executor = executor
        self._peer = peer
        self._draining = threading.Event()  # take no new work
        self._abandon = threading.Event()  # stop running attempts too
        self._abort = threading.Event()  # stop the lease loops: the agent is exiting
        self._wake_poll = threading.Event()  # cut a long-poll short: the agent's plans changed
        self._runners: dict[int, AttemptRunner] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._keeper: LeaseKeeper | None = None
        self._room = WorkDirRoom(config.work_dir)
        self._held = ""  # why the agent takes no work for now (its work dir is full)

    def stop(self) -> None:
        """First call: drain. Second call: abandon running attempts."""
        if self._draining.is_set():
            LOGGER.info("stopping running attempts")
            self._abandon_all()
        else:
            LOGGER.info("draining: no new work; running attempts finish (stop again to end them)")
            self._draining.set()
        self._wake_poll.set()

    def _running(self) -> list[AttemptRunner]:
        with self._lock:
            return list(self._runners.values())

    def _running_leases(self) -> list[Lease]:
        return [runner.lease for runner in self._running()]

    def run(self) -> None:
        """Registers and serves until drained; raises JoinRefusedError for a wrong token."""
        try:
            removed = self._executor.remove_leftovers(self.config.name)
            if removed:
                LOGGER.info(
                    "removed %d containers left by a previous run of %s", removed, self.config.name
                )
            registration = self._register()
            if registration is not None:
                self._serve(registration)
                # Shown offline at once rather than after the coordinator's offline delay.
                self._peer.sign_off()
                self._tidy_up()
                LOGGER.info("agent %s stopped", self.config.name)
        finally:
            self._peer.close()

    def _tidy_up(self) -> None:
        # Every attempt has ended: what is left (spare networks made ahead) is no attempt's.
        try:
            self._executor.remove_leftovers(self.config.name)
        except ExecutorError as error:
            LOGGER.warning("could not tidy up after %s: %s", self.config.name, error)

    def _register(self) -> Registration | None:
        """None when the agent was stopped before the coordinator could be reached."""
        credentials = CredentialFile(self.config.work_dir, self.config.name)
        about = AgentInfo(
            self.config.name, self.config.labels, self.config.concurrency, credentials.load()
        )
        try:
            registration = self._peer.register(
                about,
                self._running_leases,
                give_up=self._draining,
                keep_credential=credentials.save,
            )
        except PeerError:
            if self._draining.is_set():
                LOGGER.info("stopped before the coordinator could be reached")
                return None
            raise
        LOGGER.info(
            "agent %s registered as #%d with %s (labels %s, concurrency %d)",
            self.config.name,
            registration.agent_id,
            self.config.coordinator,
            self.config.labels or "{}",
            self.config.concurrency,
        )
        if registration.mode == "paused":
            LOGGER.warning(
                "an operator paused agent %s: it takes no work until `conveyor resume %s`",
                self.config.name,
                self.config.name,
            )
        return registration

    def _serve(self, registration: Registration) -> None:
        self._keeper = LeaseKeeper(
            self._peer,
            self._running,
            self._abort,
            ttl_s=registration.lease_ttl_s,
            interval_s=registration.renew_interval_s,
        )
        keepers = self._keeper.start()
        room_watch = threading.Thread(target=self._watch_room, name="work-dir-room", daemon=True)
        room_watch.start()
        keepers.append(room_watch)
        try:
            self._poll_loop()
        finally:
            # Whatever ended the loop, no container outlives the agent: running attempts are
            # stopped (if not drained already) and cleaned up before the process exits.
            if self._running():
                self._abandon_all()
            self._wait_for_attempts()
            self._abort.set()
            self._room.changed.set()  # the room watch would sleep out its interval otherwise
            for thread in keepers:
                thread.join(timeout=5)

    def _poll_loop(self) -> None:
        # While draining the agent keeps polling with no free slots, to hear about cancellations.
        while not (self._draining.is_set() and not self._running()):
            self._wake_poll.clear()
            draining, held = self._draining.is_set(), self._held
            slots = 0 if draining or held else self.config.concurrency
            try:
                reply = self._peer.poll(
                    free_slots=slots, draining=draining, stop=self._wake_poll, held=held
                )
            except PeerError as error:
                # Outages were retried inside the call; anything else is a coordinator fault,
                # not a reason to drop running work: report it and poll again later.
                if not error.transient:
                    LOGGER.error("polling for work failed: %s", error)
                self._wake_poll.wait(POLL_FAULT_PAUSE_S)
                continue
            if reply is None:
                continue
            # The lease ran from the claim, moments before the reply arrived; LEASE_SAFETY's
            # margin covers that delivery time.
            received = time.monotonic()
            for assignment in reply.assignments:
                self._start(assignment, received)
            for attempt_id in reply.cancel_attempt_ids:
                for runner in self._running():
                    if runner.lease.attempt_id == attempt_id:
                        runner.cancel()
            if reply.drain and not self._draining.is_set():
                LOGGER.info("the coordinator asked this agent to drain")
                self._draining.set()

    def _watch_room(self) -> None:
        """Holds off new work while the work dir has no room, and resumes once it has: each
        change cuts the long-poll short, so the coordinator hears of it at once."""
        while not self._abort.is_set():
            self._room.changed.clear()
            held = self._room.problem() or ""
            if held != self._held:
                if held:
                    LOGGER.error("taking no work: %s", held)
                else:
                    LOGGER.info("work dir %s has room again: taking work", self.config.work_dir)
                self._held = held
                self._wake_poll.set()
            self._room.changed.wait(WORK_DIR_CHECK_S)

    def _start(self, assignment: Assignment, polled_at: float) -> None:
        attempt_id = assignment.lease.attempt_id
        keeper = self._keeper
        runner = AttemptRunner(
            assignment,
            self._peer,
            self._executor,
            self.config.name,
            self.config.work_dir / "spool",
            self.config.stop_grace_s,
            self.config.spool_limit_bytes,
            lease_fresh=(lambda: keeper.fresh(attempt_id)) if keeper else lambda: True,
            room=self._room,
            allow_local_git=self.config.allow_local_git,
            default_image=self.config.default_image,
        )
        if keeper is not None:
            keeper.track(attempt_id, polled_at)
        thread = threading.Thread(
            target=self._run_attempt, args=(runner,), name=f"attempt-{attempt_id}", daemon=True
        )
        with self._lock:
            self._runners[attempt_id] = runner
            self._threads[attempt_id] = thread
        thread.start()
        if self._abandon.is_set():
            runner.abandon(f"agent {self.config.name} was stopped")

    def _run_attempt(self, runner: AttemptRunner) -> None:
        try:
            runner.run()
        except JoinRefusedError as error:
            # The poll loop meets the same refusal and stops the agent, saying why: one line
            # here, not a thread's traceback.
            LOGGER.warning(
                "attempt %d: the coordinator refused this agent (%s)",
                runner.lease.attempt_id,
                error,
            )
        finally:
            with self._lock:
                self._runners.pop(runner.lease.attempt_id, None)
                self._threads.pop(runner.lease.attempt_id, None)
            if self._keeper is not None:
                self._keeper.forget(runner.lease.attempt_id)
            if self._draining.is_set():
                self._wake_poll.set()  # the poll loop ends once the last attempt has

    def _abandon_all(self) -> None:
        self._abandon.set()
        for runner in self._running():
            runner.abandon(f"agent {self.config.name} was stopped while the step ran")

    def _wait_for_attempts(self) -> None:
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()
        if threads:
            LOGGER.info("all attempts ended")
