"""Outgoing notifications' retry rules and sender, with a driven clock and a scripted receiver:
the backoff starts at 1 s and doubles to its max with bounded jitter; each target's events go in
order, one at a time, a failing target holds back only itself, and the last try gives up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from conveyor.states import BuildStatus
from coordinator.domain.notify_records import Delivery, NotifyEvent, TargetKind, TryOutcome
from coordinator.domain.notify_sender import NotifySender
from coordinator.domain.notify_targets import SEAL_NAME
from coordinator.domain.runtime import Runtime
from coordinator.policy.notify import commit_state, gives_up, retry_delay_s
from tests.unit.coordinator.fakes import FakeNotifications, sealer

SCHEDULE = {"initial_s": 1.0, "max_s": 300.0, "jitter": 0.2}


def no_jitter(low: float, high: float) -> float:
    return low


def most_jitter(low: float, high: float) -> float:
    return high


def test_the_backoff_starts_at_one_second_and_doubles_up_to_the_max() -> None:
    delays = [retry_delay_s(n, **SCHEDULE, uniform=no_jitter) for n in range(1, 13)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    shortest = [retry_delay_s(n, **SCHEDULE, uniform=most_jitter) for n in (1, 2, 10)]
    assert shortest == pytest.approx([0.8, 1.6, 240.0])
    # A huge count of tries neither overflows nor passes the max.
    assert retry_delay_s(10_000, **SCHEDULE, uniform=no_jitter) == 300


def test_the_jitter_stays_within_its_bound() -> None:
    chosen = random.Random(7)
    for tries in range(1, 12):
        base = min(300.0, 2.0 ** (tries - 1))
        for _ in range(200):
            delay = retry_delay_s(tries, **SCHEDULE, uniform=chosen.uniform)
            assert 0.8 * base <= delay <= base


def test_the_last_try_gives_up_and_commit_states_follow_the_build() -> None:
    assert [gives_up(n, 3) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert commit_state(BuildStatus.SUCCEEDED, at_gate=False) == "success"
    assert commit_state(BuildStatus.FAILED, at_gate=False) == "failure"
    assert commit_state(BuildStatus.CANCELED, at_gate=False) == "error"
    assert commit_state(BuildStatus.RUNNING, at_gate=True) == "pending"
    assert commit_state(BuildStatus.RUNNING, at_gate=False) is None


@dataclass
class Clock:
    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s


@dataclass
class Receiver:
    """Answers each URL with its scripted statuses in turn (then 200); None: no answer."""

    clock: Clock
    script: dict[str, list[int | None]] = field(default_factory=dict)
    got: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> TryOutcome:
        self.got.append((url, body, dict(headers)))
        answers = self.script.get(url, [])
        status = answers.pop(0) if answers else 200
        at_ms = int(self.clock() * 1000)
        if status is None:
            return TryOutcome(at_ms, None, "ConnectError: refused")
        return TryOutcome(at_ms, status, "" if status == 200 else f"HTTP {status}")

    async def close(self) -> None:
        pass


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    made = Runtime()
    yield made
    made.close()


def event(number: int, target: int, url: str, sealed: bytes | None = None) -> Delivery:
    return Delivery(
        number, f"d{number}", target, TargetKind.WEBHOOK, NotifyEvent.BUILD, url,
        f'{{"n":{number}}}'.encode(), sealed, url, 0,
    )  # fmt: skip


def test_a_failing_target_is_retried_on_schedule_in_order_and_blocks_no_other(
    runtime: Runtime,
) -> None:
    clock, box = Clock(), sealer()
    receiver = Receiver(clock, {"http://a/": [503, None, 500]})
    sealed = box.seal(SEAL_NAME, "http://a/", "shh")
    events = [event(1, 1, "http://a/", sealed), event(2, 1, "http://a/", sealed)]
    store = FakeNotifications([*events, event(3, 2, "http://b/"), event(4, 2, "http://b/")])
    sender = NotifySender(
        runtime=runtime, store=store, sealer=box, poster=receiver, backoff_initial_s=1.0,
        backoff_max_s=300.0, max_tries=10, clock=clock, uniform=no_jitter,
    )  # fmt: skip

    async def pass_at(now_s: float) -> None:
        clock.now_s = now_s
        await sender.deliver_due()

    asyncio.run(pass_at(1000.0))
    # Target 2 delivered both of its events while target 1's first failed and waits 1 s.
    assert [(i, t.status, nxt) for i, t, nxt in store.tried] == [
        (1, 503, 1_001_000),
        (3, 200, None),
        (4, 200, None),
    ]
    asyncio.run(pass_at(1000.5))  # not due yet: nothing sent
    assert len(receiver.got) == 3
    for now_s in (1001.0, 1003.0, 1007.0):
        asyncio.run(pass_at(now_s))
    tried_a = [(i, t.status, nxt) for i, t, nxt in store.tried if i in (1, 2)]
    assert tried_a == [
        (1, 503, 1_001_000),
        (1, None, 1_003_000),  # then 2 s
        (1, 500, 1_007_000),  # then 4 s
        (1, 200, None),
        (2, 200, None),  # only after event 1 was delivered
    ]
    sent_a = [(body, headers) for url, body, headers in receiver.got if url == "http://a/"]
    for body, headers in sent_a:
        expected = hmac.new(b"shh", body, hashlib.sha256).hexdigest()
        assert headers["X-Conveyor-Signature"] == f"sha256={expected}"
        assert headers["Content-Type"] == "application/json"
    assert [h["X-Conveyor-Delivery"] for _, h in sent_a] == ["d1"] * 4 + ["d2"]
    assert all("X-Conveyor-Signature" not in h for u, _, h in receiver.got if u == "http://b/")


def test_an_event_is_given_up_after_the_last_try_and_the_next_one_goes(runtime: Runtime) -> None:
    clock = Clock()
    receiver = Receiver(clock, {"http://a/": [503, 503, 503]})
    store = FakeNotifications([event(1, 1, "http://a/"), event(2, 1, "http://a/")])
    sender = NotifySender(
        runtime=runtime, store=store, sealer=sealer(), poster=receiver, backoff_initial_s=1.0,
        backoff_max_s=2.0, max_tries=3, clock=clock, uniform=no_jitter,
    )  # fmt: skip
    for now_s in (1000.0, 1001.0, 1003.0):
        clock.now_s = now_s
        asyncio.run(sender.deliver_due())
    assert [(i, t.status, nxt) for i, t, nxt in store.tried] == [
        (1, 503, 1_001_000),
        (1, 503, 1_003_000),
        (1, 503, None),  # the third try was the last: given up
        (2, 200, None),
    ]
    assert store.pending == []


class Hanging:
    """A receiver that accepts the request and never answers."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> TryOutcome:
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async def close(self) -> None:
        pass


def test_a_stop_cuts_a_hanging_try_short_and_records_nothing(runtime: Runtime) -> None:
    store = FakeNotifications([event(1, 1, "http://a/")])
    hanging = Hanging()
    sender = NotifySender(
        runtime=runtime, store=store, sealer=sealer(), poster=hanging, backoff_initial_s=1.0,
        backoff_max_s=2.0, max_tries=3,
    )  # fmt: skip

    async def stop_while_hanging() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(sender.deliver_forever(stop))
        await asyncio.wait_for(hanging.called.wait(), 30)
        stop.set()
        await asyncio.wait_for(loop, 30)

    asyncio.run(stop_while_hanging())
    assert store.tried == []
    # Still pending and released: due at once for the next coordinator, not after its claim.
    assert ([d.id for d in store.pending], store.released) == ([1], [1])


class SlowClaims(FakeNotifications):
    """An outbox whose claim takes until the test lets it finish (a busy database)."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        super().__init__(deliveries)
        self.entered = threading.Event()
        self.go_on = threading.Event()

    def claim(self, now: int, limit: int, *, until: int) -> list[Delivery]:
        self.entered.set()
        self.go_on.wait(30)
        return super().claim(now, limit, until=until)


def test_a_stop_during_a_claim_releases_what_the_claim_took(runtime: Runtime) -> None:
    clock = Clock()
    store = SlowClaims([event(1, 1, "http://a/")])
    sender = NotifySender(
        runtime=runtime, store=store, sealer=sealer(), poster=Receiver(clock),
        backoff_initial_s=1.0, backoff_max_s=2.0, max_tries=3, clock=clock,
    )  # fmt: skip

    async def stop_while_claiming() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(sender.deliver_forever(stop))
        await asyncio.get_running_loop().run_in_executor(None, store.entered.wait, 30)
        stop.set()
        for _ in range(50):  # the stop reaches the pass, which cancels its claim's wait
            await asyncio.sleep(0)
        store.go_on.set()
        await asyncio.wait_for(loop, 30)
        await runtime.db(lambda: None)  # the claim, on the store thread, has ended

    asyncio.run(stop_while_claiming())
    assert store.tried == []
    # Released: due at once for the next coordinator, not a minute later when the claim lapses.
    assert store.released == [1]
    assert store.due_at[1] == int(clock() * 1000)
