"""The coordinator's data dir fills up mid-build: nothing is lost, and the build completes once
space returns (DESIGN §7). The data dir is a real size-limited filesystem (tmpfs)."""

from __future__ import annotations

import contextlib
import errno
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline
from tests.tmpfs import small_filesystem

# On PostgreSQL the database is not in the data dir, so the full disk meets only the log and
# blob files, whose code does not depend on the backend: the SQLite pass covers that and the
# database's writes meeting the full disk as well.
pytestmark = pytest.mark.any_store

DATA_DIR_MIB = 48
FULL_FOR_S = 4.0
LINES = 60
# Each line its own pages' worth: a log that grew within one page would never meet the full disk.
PAD = "x" * 5000


def fill(directory: Path) -> Path:
    """Writes a file until the filesystem has no byte left; returns it."""
    filler = directory / "filler"
    block = b"\0" * (1024 * 1024)
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(block)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                break
        with contextlib.suppress(OSError):  # the last partial block, byte by byte
            while out.write(b"\0"):
                pass
    return filler


@pytest.fixture
def small_disk_cluster(tmp_path: Path) -> Iterator[Cluster]:
    created = Cluster(tmp_path / "small", server_args=("--lease-ttl", "12"), executor="fake")
    with small_filesystem(created.data_dir, f"{DATA_DIR_MIB}m", "0700"):
        created.start_server()
        try:
            yield created
        finally:
            created.close()


def test_a_build_whose_data_dir_fills_up_completes_once_space_returns(
    small_disk_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = small_disk_cluster
    cluster.start_agent(f"steady-{unique}")
    lines = "; ".join(f"echo line {i} ${{PAD}}; sleep 0.1" for i in range(1, LINES + 1))
    text = (
        "name: full\nimage: conveyor/busybox\njobs:\n  talk:\n    steps:\n"
        f"      - run: {lines}\n        env: {{PAD: {PAD}}}\n"
        "  then:\n    needs: [talk]\n    steps: [{run: echo after}]\n"
    )
    result = cluster.cli(
        "run", str(write_pipeline(tmp_path, "full.yml", text)), "--no-follow", "--json"
    )
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]
    wait_for(
        lambda: b"line 3 " in cluster.cli("logs", str(build_id), "talk").stdout,
        30,
        "the step to start talking",
    )

    filler = fill(cluster.data_dir)
    time.sleep(FULL_FOR_S)
    during = cluster.show(build_id)
    filler.unlink()

    doc = cluster.wait_build(build_id, lambda d: d["status"] != "running", 120, "the build")
    assert doc["status"] == "succeeded", doc
    assert during["status"] == "running", during  # the full disk failed nothing
    talk = job(doc, "talk")
    assert talk["attempts"] == 1
    expected = b"".join(f"line {i} {PAD}\n".encode() for i in range(1, LINES + 1))
    assert cluster.cli("logs", str(build_id), "talk").stdout == expected
    assert cluster.cli("logs", str(build_id), "then").stdout == b"after\n"
    log = cluster.processes[0].log()
    assert "Traceback" not in log, log
    assert "retry once space returns" in log or "No space left" in log, log
