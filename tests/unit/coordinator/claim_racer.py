"""One contender of the claim race (test_claim_race.py): claims until the queue stays empty.

    python -m tests.unit.coordinator.claim_racer URL AGENT_ID READY_FILE GO_FILE

Prints one JSON list of [attempt_id, build_id, job_name, attempt_number], one per job it got.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from coordinator.store import Store

LABELS = {"os": "linux"}
# Empty answers in a row that mean the queue is drained (the other contender may hold a few).
EMPTY_ROUNDS = 20
CONTENDERS = 2  # as test_claim_race.py starts


def main() -> None:
    url, agent_id, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    got: list[tuple[int, int, str, int]] = []
    empty, slots, met = 0, 1, False
    while empty < EMPTY_ROUNDS:
        assignments = store.attempts.claim(agent_id, LABELS, slots)
        slots = slots % 3 + 1  # 1, 2, 3, 1, ...: claims of different sizes overlap
        empty = 0 if assignments else empty + 1
        got += [(a.attempt_id, a.build_id, a.job_name, a.attempt_number) for a in assignments]
        if not met:  # after the first claim, the other's first
            _meet(ready.with_name(f"first-{agent_id}"), deadline)
            met = True
    store.close()
    print(json.dumps(got))


def _meet(mine: Path, deadline: float) -> None:
    """Waits until every contender has made its first claim, so that one scheduled late on a
    loaded machine still races: claims are quick, and the first could drain the queue alone."""
    mine.touch()
    while len(list(mine.parent.glob("first-*"))) < CONTENDERS and time.monotonic() < deadline:
        time.sleep(0.001)


if __name__ == "__main__":
    main()
