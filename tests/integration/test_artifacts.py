"""Artifacts through the whole system: a large file between jobs and to the CLI (out of and into
Docker volumes), and retention (fake executor)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from tests.harness import Cluster, Process, job, write_pipeline

LOGGER = logging.getLogger(__name__)

BIG_MIB = 200
BIG = f"""
name: big
image: conveyor/busybox
jobs:
  a:
    steps:
      - run: |
          head -c {BIG_MIB * 1024 * 1024} /dev/urandom > big.bin
          sha256sum big.bin > big.sha256
    artifacts: [big.bin, big.sha256]
  b:
    needs: [a]
    steps:
      - run: sha256sum -c big.sha256 && stat -c %s big.bin
"""


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            hasher.update(chunk)
    return hasher.hexdigest()


def peak_rss_mib(process: Process) -> float:
    """VmHWM: the most resident memory the process ever had, in MiB."""
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.any_store  # bytes and memory, not rows
@pytest.mark.docker
def test_large_artifact_arrives_byte_exact_with_bounded_memory(
    docker_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = docker_cluster
    agent = cluster.start_agent("big")
    server = next(p for p in cluster.processes if p.name == "server")
    idle = {"coordinator": peak_rss_mib(server), "agent": peak_rss_mib(agent)}
    result = cluster.cli("run", str(write_pipeline(tmp_path, "big.yml", BIG)), "--json")
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    build_id = json.loads(result.stdout)["id"]
    log = cluster.cli("logs", str(build_id), "b").stdout.decode()
    assert "big.bin: OK" in log
    assert str(BIG_MIB * 1024 * 1024) in log

    listing = cluster.json("artifacts", str(build_id))["artifacts"]
    assert {(a["job"], a["name"]) for a in listing} == {("a", "big.bin"), ("a", "big.sha256")}
    out = tmp_path / "out"
    download = cluster.cli("artifacts", str(build_id), "--download", str(out), "--job", "a")
    assert download.returncode == 0, download.stderr.decode()
    expected = (out / "a" / "big.sha256").read_text().split()[0]
    assert _sha256(out / "a" / "big.bin") == expected
    assert next(a for a in listing if a["name"] == "big.bin")["sha256"] == expected
    assert sorted(p.name for p in (out / "a").iterdir()) == ["big.bin", "big.sha256"]

    # Streaming keeps the growth over the idle process a small constant, whatever the size.
    peaks = {"coordinator": peak_rss_mib(server), "agent": peak_rss_mib(agent)}
    LOGGER.warning("peak RSS (MiB) idle %s, after a %d MiB artifact %s", idle, BIG_MIB, peaks)
    for side, peak in peaks.items():
        grown = peak - idle[side]
        assert grown < BIG_MIB / 3, f"{side} grew by {grown:.0f} MiB to {peak:.0f} MiB"


SHARED = """
name: keep
image: conveyor/busybox
jobs:
  a:
    steps:
      - run: echo shared > shared.txt && echo {own} > own.txt
    artifacts: [shared.txt, own.txt]
"""


def test_gc_drops_old_builds_but_keeps_newest_and_shared_content(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    builds = []
    for own in ("first", "second"):
        text = SHARED.format(own=own)
        result = shared_cluster.cli("run", str(write_pipeline(tmp_path, "k.yml", text)), "--json")
        assert result.returncode == 0, result.stderr.decode()
        builds.append(json.loads(result.stdout)["id"])
    old, new = (shared_cluster.json("artifacts", str(b))["artifacts"] for b in builds)
    shared_digest = next(a["sha256"] for a in old if a["name"] == "shared.txt")
    first_digest = next(a["sha256"] for a in old if a["name"] == "own.txt")

    summary = shared_cluster.json("gc", "--older-than", "0s")
    assert summary["builds"] >= 1 and summary["blobs"] >= 1

    assert shared_cluster.json("artifacts", str(builds[0]))["artifacts"] == []
    assert shared_cluster.json("artifacts", str(builds[1]))["artifacts"] == new
    blobs = shared_cluster.data_dir / "blobs" / "sha256"
    assert (blobs / shared_digest[:2] / shared_digest[2:]).exists()
    assert not (blobs / first_digest[:2] / first_digest[2:]).exists()
    out = tmp_path / "out"
    download = shared_cluster.cli("artifacts", str(builds[1]), "--download", str(out))
    assert download.returncode == 0, download.stderr.decode()
    assert (out / "a" / "shared.txt").read_text() == "shared\n"
    assert job(shared_cluster.show(builds[1]), "a")["status"] == "succeeded"


def test_retry_of_a_build_gc_emptied_is_refused_and_changes_nothing(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "input.txt").write_text("from the source\n")
    pipeline = write_pipeline(
        tmp_path, "src.yml", SHARED.format(own="x").replace("echo shared", "cat input.txt")
    )
    builds = []
    for _ in range(2):  # gc never touches the newest build
        result = shared_cluster.cli("run", str(pipeline), "--source", str(source), "--json")
        assert result.returncode == 0, result.stderr.decode()
        builds.append(json.loads(result.stdout)["id"])
    assert shared_cluster.cli("gc", "--older-than", "0s").returncode == 0

    refused = shared_cluster.cli("retry", str(builds[0]), "a")
    assert refused.returncode == 2, refused.stdout.decode()
    assert b"gc removed its source and artifacts" in refused.stderr
    after = shared_cluster.show(builds[0])
    assert after["status"] == "succeeded"
    assert job(after, "a")["attempts"] == 1
    # The newest build kept its source: retrying it still works.
    again = shared_cluster.cli("retry", str(builds[1]), "a", "--follow")
    assert again.returncode == 0, again.stderr.decode()
