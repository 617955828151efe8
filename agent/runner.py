"""The agent's loops: register, long-poll for work, renew leases, run attempts on threads."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from agent.attempt import AttemptRunner
from agent.client import CoordinatorClient, is_retryable
from agent.config import CALL_TIMEOUT_S, AgentConfig
from agent.executor import Executor
from conveyor.v1 import agent_pb2, types_pb2

LOGGER = logging.getLogger(__name__)

# After a failed poll (coordinator down), wait this long before the next one; tenacity already
# backs off inside one call, this only spaces out whole failed polls.
POLL_ERROR_PAUSE_S = 1.0


class Agent:
    def __init__(self, config: AgentConfig, executor: Executor) -> None:
        self.config = config
        self._executor = executor
        self._stop = threading.Event()  # stop taking work, then stop running attempts
        self._abort = threading.Event()  # give up retrying calls
        self._client = CoordinatorClient(config, self._abort)
        self._client.running = self._running_leases
        self._runners: dict[int, AttemptRunner] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._spool = config.work_dir / "spool"

    def stop(self) -> None:
        self._stop.set()

    def _running_leases(self) -> list[types_pb2.Lease]:
        with self._lock:
            return [runner.lease for runner in self._runners.values()]

    def run(self) -> None:
        """Registers and serves until stop(); raises JoinRefusedError for a wrong token."""
        removed = self._executor.remove_leftovers(self.config.name)
        if removed:
            LOGGER.info(
                "removed %d containers left by a previous run of %s", removed, self.config.name
            )
        try:
            registration = self._client.register(interrupt=self._stop)
        except grpc.RpcError:
            if self._stop.is_set():
                LOGGER.info("stopped before the coordinator could be reached")
                return
            raise
        LOGGER.info(
            "agent %s registered as #%d with %s (labels %s, concurrency %d)",
            self.config.name,
            registration.agent_id,
            self.config.coordinator,
            self.config.labels or "{}",
            self.config.concurrency,
        )
        renewer = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        renewer.start()
        try:
            self._poll_loop()
        finally:
            self._shutdown()
            renewer.join(timeout=5)
            self._client.close()

    def _poll_loop(self) -> None:
        registration = self._client.registration
        assert registration is not None
        timeout_s = registration.poll_timeout_ms / 1000 + CALL_TIMEOUT_S
        while not self._stop.is_set():
            request = agent_pb2.PollWorkRequest(free_slots=self.config.concurrency)
            try:
                reply = self._client.poll(request, timeout_s, self._stop)
            except grpc.RpcError as error:
                if not is_retryable(error):
                    raise
                self._stop.wait(POLL_ERROR_PAUSE_S)
                continue
            if reply is None:
                break
            for assignment in reply.assignments:
                self._start(assignment)
            for attempt_id in reply.cancel_attempt_ids:
                self._with_runner(attempt_id, lambda runner: runner.cancel())

    def _start(self, assignment: agent_pb2.Assignment) -> None:
        runner = AttemptRunner(
            assignment,
            self._client,
            self._executor,
            self.config.name,
            self._spool,
            self.config.stop_grace_s,
        )
        attempt_id = assignment.lease.attempt_id
        thread = threading.Thread(
            target=self._run_attempt, args=(runner,), name=f"attempt-{attempt_id}", daemon=True
        )
        with self._lock:
            self._runners[attempt_id] = runner
            self._threads[attempt_id] = thread
        thread.start()

    def _run_attempt(self, runner: AttemptRunner) -> None:
        try:
            runner.run()
        finally:
            with self._lock:
                self._runners.pop(runner.lease.attempt_id, None)
                self._threads.pop(runner.lease.attempt_id, None)

    def _with_runner(self, attempt_id: int, action: object) -> None:
        with self._lock:
            runner = self._runners.get(attempt_id)
        if runner is not None and callable(action):
            action(runner)

    def _renew_loop(self) -> None:
        """Renews on its own thread and interval, so busy steps or log traffic never starve it."""
        registration = self._client.registration
        assert registration is not None
        interval_s = registration.renew_interval_ms / 1000
        while not self._abort.wait(interval_s):
            leases = self._running_leases()
            if not leases:
                continue
            try:
                reply = self._client.call(
                    self._client.stub.RenewLeases,
                    agent_pb2.RenewLeasesRequest(leases=leases),
                    budget_s=interval_s,
                )
            except grpc.RpcError as error:
                LOGGER.warning("lease renewal failed: %s", error)
                continue
            for status in reply.leases:
                if status.state == agent_pb2.LEASE_STATE_LOST:
                    LOGGER.warning("attempt %d: lease lost; stopping it", status.attempt_id)
                    self._with_runner(status.attempt_id, lambda runner: runner.lose())
                elif status.state == agent_pb2.LEASE_STATE_CANCEL:
                    self._with_runner(status.attempt_id, lambda runner: runner.cancel())

    def _shutdown(self) -> None:
        """Stops running attempts (reason agent_stopped), waits for their reports, then returns."""
        with self._lock:
            runners = list(self._runners.values())
            threads = list(self._threads.values())
        for runner in runners:
            runner.abandon(f"agent {self.config.name} was stopped while the step ran")
        for thread in threads:
            thread.join(timeout=self.config.stop_grace_s + 30)
        self._abort.set()


__all__ = ["Agent", "Path"]
