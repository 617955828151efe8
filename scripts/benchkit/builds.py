"""Submitting builds through the control API and waiting for their final state."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from benchkit.config import BUILD_TIMEOUT_S, BUSYBOX, SUBMIT_THREADS
from conveyor.cli.client import Client
from conveyor.v1 import types_pb2

FINAL = frozenset(
    {
        types_pb2.BUILD_STATUS_SUCCEEDED,
        types_pb2.BUILD_STATUS_FAILED,
        types_pb2.BUILD_STATUS_CANCELED,
    }
)


def one_step(script: str, name: str = "bench", executor: str = "docker") -> str:
    """A pipeline of one job with one step; YAML-quoted so any script survives. Shell agents take
    only jobs that ask for them (`executor=shell`), so a shell run's job says so."""
    quoted = script.replace("'", "''")
    labels = "    labels: {executor: shell}\n" if executor == "shell" else ""
    return (
        f"name: {name}\nimage: {BUSYBOX}\njobs:\n  one:\n{labels}"
        f"    steps:\n      - run: '{quoted}'\n"
    )


def wait_final(client: Client, build_id: int) -> int:
    """Follows the build until it is final; returns its status."""
    for event in client.watch(build_id, include_logs=False, resume={}):
        if event.HasField("snapshot") and event.snapshot.status in FINAL:
            return int(event.snapshot.status)
    raise RuntimeError(f"build {build_id}: the watch ended before a final state")


def run_build(client: Client, pipeline: str) -> tuple[int, float]:
    """(build id, seconds from submission to the build's final state); the build must succeed."""
    started = time.perf_counter()
    build_id = client.submit(pipeline, "bench.yml", {})
    status = wait_final(client, build_id)
    elapsed = time.perf_counter() - started
    if status != types_pb2.BUILD_STATUS_SUCCEEDED:
        raise RuntimeError(f"build {build_id} did not succeed (status {status})")
    return build_id, elapsed


def run_timed(client: Client, pipeline: str) -> float:
    return run_build(client, pipeline)[1]


def submit_many(client: Client, pipeline: str, count: int) -> list[int]:
    """Submits `count` builds from a few threads (as many users would); ids in submission order."""
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        return list(pool.map(lambda _: client.submit(pipeline, "bench.yml", {}), range(count)))


def wait_all(client: Client, build_ids: list[int]) -> int:
    """Waits until every build is final; returns how many did not succeed."""
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    failed = 0
    for build_id in build_ids:
        if time.monotonic() > deadline:
            raise RuntimeError(f"builds not final after {BUILD_TIMEOUT_S:g} s")
        failed += wait_final(client, build_id) != types_pb2.BUILD_STATUS_SUCCEEDED
    return failed
