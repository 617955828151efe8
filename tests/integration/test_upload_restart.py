"""An artifact upload cut by a coordinator crash is tried again within the attempt: the build
succeeds and the artifact is stored whole.

The agent reaches the coordinator through a slow proxy, so the upload is still under way when
the test kills the coordinator (once the coordinator holds part of the file)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.faults import TcpProxy
from tests.harness import Cluster, job, wait_for, write_pipeline

# The upload's bytes go to the blob files; its rows and the restart's reload are the ones every
# build has (the restart tests run on both backends).
pytestmark = pytest.mark.any_store

SIZE = 24 * 1000 * 1000
# Bytes per second through the proxy: the upload takes several seconds.
RATE = 3 * 1000 * 1000

PIPELINE = f"""
name: big
image: any
jobs:
  make:
    labels: {{executor: shell}}
    steps:
      - run: yes conveyor | head -c {SIZE} > big.bin
    artifacts: [big.bin]
"""


def _expected() -> str:
    line = b"conveyor\n"
    return hashlib.sha256((line * (SIZE // len(line) + 1))[:SIZE]).hexdigest()


def _receiving(cluster: Cluster) -> int:
    """Bytes of the largest upload the coordinator is receiving now."""
    incoming = cluster.data_dir / "blobs" / "tmp"
    sizes = [p.stat().st_size for p in incoming.glob("in-*") if p.exists()]
    return max(sizes, default=0)


def test_an_upload_cut_by_a_coordinator_crash_is_retried(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, executor="shell")
    server = cluster.start_server()
    proxy = TcpProxy(cluster.address, rate=RATE)
    try:
        cluster.start_agent("host", via=proxy.address)
        pipeline = write_pipeline(tmp_path, "big.yml", PIPELINE)
        build_id = cluster.json("run", str(pipeline), "--no-follow")["id"]
        wait_for(lambda: _receiving(cluster) > SIZE // 4, 120, "the upload to be under way")
        server.kill()
        cluster.start_server()

        doc = cluster.wait_build(
            build_id, lambda d: d["status"] in ("succeeded", "failed"), 180, "the build to end"
        )
        assert doc["status"] == "succeeded", job(doc, "make")
        assert job(doc, "make")["attempts"] == 1, doc
        listing = cluster.json("artifacts", str(build_id))
        assert [(a["name"], a["sha256"]) for a in listing["artifacts"]] == [
            ("big.bin", _expected())
        ]
        target = tmp_path / "download"
        result = cluster.cli("artifacts", str(build_id), "--download", str(target))
        assert result.returncode == 0, result.stderr.decode()
        downloaded = next(target.rglob("big.bin"))
        assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == _expected()
    finally:
        cluster.close()
        proxy.close()
