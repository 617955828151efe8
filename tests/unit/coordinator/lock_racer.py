"""One contender of the deploy lock race (test_lock_race.py): a coordinator's store that claims
deployment jobs, holds each a moment and ends it, until the queue stays empty.

    python -m tests.unit.coordinator.lock_racer URL AGENT_ID READY_FILE GO_FILE

Prints one JSON list of [build_id, started_s, ended_s], one per deployment it ran.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conveyor.states import Outcome
from coordinator.store import Store

EMPTY_ROUNDS = 200
HOLD_S = 0.02


def main() -> None:
    url, agent_id, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    ran: list[tuple[int, float, float]] = []
    empty = 0
    while empty < EMPTY_ROUNDS:
        assignments = store.attempts.claim(agent_id, {}, 2)
        empty = 0 if assignments else empty + 1
        for assignment in assignments:
            started = time.time()
            time.sleep(HOLD_S)
            ended = time.time()
            store.attempts.finish(
                assignment.attempt_id,
                outcome=Outcome.SUCCEEDED,
                reason="",
                message="",
                exit_code=0,
            )
            ran.append((assignment.build_id, started, ended))
        time.sleep(0.001)
    store.close()
    print(json.dumps(ran))


if __name__ == "__main__":
    main()
