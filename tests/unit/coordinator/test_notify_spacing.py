"""Followers of a build's logs: woken at once for the first bytes after a quiet spell, and with
many of them, at most once per spacing that grows with their number while bytes keep coming."""

from __future__ import annotations

import asyncio

from coordinator.domain.notify import BuildNotifier

PER_FOLLOWER_S = 0.001


async def _followers(notifier: BuildNotifier, count: int) -> list[asyncio.Task[None]]:
    seen = notifier.version(1)
    tasks = [asyncio.create_task(notifier.wait(1, seen, 30)) for _ in range(count)]
    await asyncio.sleep(0.01)  # all of them waiting
    return tasks


def test_one_follower_hears_of_every_append_at_once() -> None:
    async def main() -> None:
        notifier = BuildNotifier(spacing_per_follower_s=PER_FOLLOWER_S, spacing_max_s=1)
        for expected in (1, 2, 3):
            (follower,) = await _followers(notifier, 1)
            notifier.appended(1)
            await asyncio.wait_for(follower, 1)
            assert notifier.version(1) == expected

    asyncio.run(main())


def test_many_followers_hear_of_a_burst_once_now_and_once_after_the_spacing() -> None:
    async def main() -> None:
        # A spacing of 1 s: far longer than a loaded machine takes to start the followers.
        notifier = BuildNotifier(spacing_per_follower_s=10 * PER_FOLLOWER_S, spacing_max_s=2)
        first = await _followers(notifier, 100)
        notifier.appended(1)
        await asyncio.wait_for(asyncio.gather(*first), 1)  # the first bytes: at once
        second = await _followers(notifier, 100)
        for _ in range(20):
            notifier.appended(1)  # a step printing without pause
        assert notifier.version(1) == 1 and not any(task.done() for task in second)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(asyncio.gather(*second), 5)
        assert loop.time() - began >= 0.5  # held back, then one wake for the twenty
        assert notifier.version(1) == 2

    asyncio.run(main())


def test_a_state_change_wakes_at_once_and_carries_the_bytes_held_back() -> None:
    async def main() -> None:
        notifier = BuildNotifier(spacing_per_follower_s=PER_FOLLOWER_S, spacing_max_s=10)
        first = await _followers(notifier, 100)
        notifier.appended(1)
        await asyncio.gather(*first)
        second = await _followers(notifier, 100)
        notifier.appended(1)  # held back for the spacing
        notifier.changed(1)  # the step ended: no follower may wait for that
        await asyncio.wait_for(asyncio.gather(*second), 1)
        assert notifier.version(1) == 2  # one state change, the first append; none pending

    asyncio.run(main())
