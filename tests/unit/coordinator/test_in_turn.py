"""Turns per key in arrival order: how a step's log chunks, sent back to back, are stored."""

from __future__ import annotations

import asyncio

from coordinator.domain.fanout import InTurn


async def _arrivals(turns: InTurn, order: list[int], key: str, number: int, hold: float) -> None:
    async with turns.turn(key):
        await asyncio.sleep(hold)  # a store call in a worker thread: others queue meanwhile
        order.append(number)


def test_holders_of_one_key_take_turns_in_the_order_they_came() -> None:
    async def main() -> list[int]:
        turns, order = InTurn(), list[int]()
        # The first holds longest: without turns, the later ones would finish first.
        await asyncio.gather(
            *(_arrivals(turns, order, "step", n, 0.05 - n * 0.01) for n in range(5))
        )
        assert len(turns) == 0  # the key's lock went with its last holder
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_other_keys_do_not_wait_for_a_busy_one() -> None:
    async def main() -> list[int]:
        turns, order = InTurn(), list[int]()
        slow = asyncio.create_task(_arrivals(turns, order, "busy", 1, 0.2))
        await asyncio.sleep(0)
        await _arrivals(turns, order, "other", 2, 0)
        await slow
        return order

    assert asyncio.run(main()) == [2, 1]
