"""Sends the outbox's events: each target's in order, one at a time; targets side by side.

A try answered 2xx delivers the event. Anything else (another status, no answer, a timeout) is
recorded and tried again after a backoff (`coordinator.policy.notify`), until the last try gives
it up; then the target's next event goes. Every state lives in the store, so a coordinator that
restarts sends what was pending, from where it was: an event is delivered at least once (twice
only if the coordinator stopped between a receiver's answer and recording it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable

from coordinator.config import (
    MAX_NOTIFY_ERROR_CHARS,
    NOTIFY_BACKOFF_JITTER,
    NOTIFY_CLAIM_S,
    NOTIFY_CONCURRENCY,
    NOTIFY_POLL_S,
)
from coordinator.domain.errors import SealError
from coordinator.domain.loops import every
from coordinator.domain.notify_records import Delivery, TargetKind, TryOutcome
from coordinator.domain.notify_targets import SEAL_NAME
from coordinator.domain.ports import HttpPoster, NotificationStore, SecretSealer
from coordinator.domain.runtime import Runtime, uncancellable
from coordinator.policy.notify import Uniform, gives_up, retry_delay_s

LOGGER = logging.getLogger(__name__)
# A pass sends rounds of due events until none is left, at most this many (then the next pass).
MAX_ROUNDS_PER_PASS = 100


def signature(secret: str, body: bytes) -> str:
    """The X-Conveyor-Signature header's value: HMAC-SHA256 of the exact body, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class NotifySender:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: NotificationStore,
        sealer: SecretSealer,
        poster: HttpPoster,
        backoff_initial_s: float,
        backoff_max_s: float,
        max_tries: int,
        clock: Callable[[], float] = time.time,
        uniform: Uniform = random.uniform,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._sealer = sealer
        self._poster = poster
        self._initial_s = backoff_initial_s
        self._max_s = backoff_max_s
        self._max_tries = max_tries
        self._clock = clock
        self._uniform = uniform

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def deliver_forever(self, stop: asyncio.Event) -> None:
        """Sends due events every `NOTIFY_POLL_S` until `stop` is set; a stop cuts a try short
        (a receiver that hangs must not hold the coordinator's shutdown): that event was not
        recorded as delivered, so it is sent again after the restart."""

        async def one_pass() -> None:
            work = asyncio.ensure_future(self.deliver_due())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if not work.done():
                    work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work

        await every("notification sender", NOTIFY_POLL_S, one_pass, stop)

    async def deliver_due(self) -> int:
        """Sends what is due now, round after round, until nothing is; how many tries it made."""
        made = 0
        for _ in range(MAX_ROUNDS_PER_PASS):
            due = await self._claim()
            if not due:
                break
            try:
                await asyncio.gather(*(self._deliver(delivery) for delivery in due))
            except asyncio.CancelledError:
                # Stopping: the tries cut short are due again at once, for whoever sends next.
                ids = [delivery.id for delivery in due]
                await uncancellable(self._runtime.db(self._store.release, ids, self._now_ms()))
                raise
            made += len(due)
        return made

    async def _claim(self) -> list[Delivery]:
        """Claims the events due now. A stop while the store claims waits for the claim and
        releases what it took: left claimed, they would wait a minute after the restart."""
        now = self._now_ms()
        until = now + int(NOTIFY_CLAIM_S * 1000)
        claim = asyncio.ensure_future(
            self._runtime.db(self._store.claim, now, NOTIFY_CONCURRENCY, until=until)
        )
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                ids = [delivery.id for delivery in await claim]
                await uncancellable(self._runtime.db(self._store.release, ids, self._now_ms()))
            raise

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            headers = self._headers(delivery)
        except SealError as error:
            outcome = TryOutcome(
                self._now_ms(), None, f"the target's secret cannot be opened: {error}"
            )
        else:
            outcome = await self._poster.post(delivery.url, delivery.body, headers)
        tries = delivery.tries + 1
        next_try: int | None = None
        if not outcome.delivered and not gives_up(tries, self._max_tries):
            delay_s = retry_delay_s(
                tries,
                initial_s=self._initial_s,
                max_s=self._max_s,
                jitter=NOTIFY_BACKOFF_JITTER,
                uniform=self._uniform,
            )
            next_try = outcome.at_ms + max(1, int(delay_s * 1000))
        if not outcome.delivered:
            LOGGER.info(
                "notification %s to target %d failed (try %d): %s%s",
                delivery.delivery_id,
                delivery.target_id,
                tries,
                outcome.error[:MAX_NOTIFY_ERROR_CHARS],
                "" if next_try is not None else "; given up",
            )
        await self._runtime.db(self._store.record_try, delivery.id, outcome, next_try)

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "conveyor-notify",
            "X-Conveyor-Event": delivery.event.value,
            "X-Conveyor-Delivery": delivery.delivery_id,
        }
        secret = None
        if delivery.sealed is not None:
            secret = self._sealer.open(SEAL_NAME, delivery.seal_scope, delivery.sealed)
        if delivery.kind is TargetKind.COMMIT_STATUS:
            headers["Accept"] = "application/json"
            if secret is not None:
                headers["Authorization"] = f"token {secret}"
        elif secret is not None:
            headers["X-Conveyor-Signature"] = signature(secret, delivery.body)
        return headers
