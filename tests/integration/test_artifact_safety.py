"""DESIGN §7.8 and issue 3 point 5: every unsafe artifact case refused with its reason, and
nothing written outside its root: symlink escapes, `..` and absolute paths, size limits, digest
mismatches on upload and on download.

Symlinks are read out of real Docker volumes, where the engine would follow them; the limits and
digests are the agent's and the coordinator's business, so those steps run on the fake executor.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from conveyor import wire
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster, job, write_pipeline

MIB = 1024 * 1024
SERVER_LIMITS = ["--max-artifact-size", "2MiB", "--max-build-artifacts-size", "3MiB"]


def _limited(root: Path, executor: str) -> Cluster:
    created = Cluster(root, server_args=SERVER_LIMITS, executor=executor)
    created.start_server()
    created.start_agent(f"safe-{uuid.uuid4().hex[:6]}", concurrency=2)
    return created


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A coordinator keeping at most 2 MiB per artifact and 3 MiB per build, one agent."""
    created = _limited(tmp_path_factory.mktemp("limited"), "fake")
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(scope="module")
def limited_docker(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[Cluster]:
    """`limited` with a Docker agent."""
    created = _limited(tmp_path_factory.mktemp("limited-docker"), "docker")
    try:
        yield created
    finally:
        created.close()


def _run(cluster: Cluster, tmp_path: Path, text: str) -> dict[str, object]:
    result = cluster.cli("run", str(write_pipeline(tmp_path, "p.yml", text)), "--json")
    assert result.returncode == 1, result.stderr.decode() + result.stdout.decode()
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _blob_files(cluster: Cluster) -> list[Path]:
    root = cluster.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file()]


ESCAPES = """
name: escapes
image: conveyor/busybox
jobs:
  absolute:
    steps: [{run: ln -s /etc/passwd leak}]
    artifacts: [leak]
  relative:
    steps: [{run: mkdir d && ln -s ../../../etc/passwd d/leak}]
    artifacts: ["d/**"]
  through:
    steps: [{run: ln -s /etc etc && ln -s etc/passwd leak}]
    artifacts: [leak]
"""


@pytest.mark.any_store  # refused on the agent
@pytest.mark.docker
def test_symlinks_leaving_the_workspace_are_refused(
    limited_docker: Cluster, tmp_path: Path
) -> None:
    limited = limited_docker
    before = _blob_files(limited)
    doc = _run(limited, tmp_path, ESCAPES)
    expected = {
        "absolute": "artifact 'leak': symlink points outside the workspace",
        "relative": "artifact 'd/leak': symlink points outside the workspace",
        "through": "artifact 'leak': symlink goes through another symlink",
    }
    for name, message in expected.items():
        found = job(doc, name)
        assert (found["status"], found["reason"]) == ("failed", "artifacts_failed"), found
        assert message in found["message"]
    assert limited.json("artifacts", str(doc["id"]))["artifacts"] == []
    assert _blob_files(limited) == before


@pytest.mark.any_store  # refused as the pipeline is read
@pytest.mark.parametrize("glob", ["../outside", "/etc/passwd", "a/../../b"])
def test_artifact_globs_outside_the_workspace_are_invalid(
    limited: Cluster, tmp_path: Path, glob: str
) -> None:
    text = "name: x\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'true'}]\n"
    text += f"    artifacts: ['{glob}']\n"
    result = limited.cli("run", str(write_pipeline(tmp_path, "p.yml", text)))
    assert result.returncode == 2
    assert f"invalid artifact path '{glob}'" in result.stderr.decode()


LIMITS = """
name: limits
image: conveyor/busybox
jobs:
  huge:
    steps: [{run: head -c 3145728 /dev/zero > huge.bin}]
    artifacts: [huge.bin]
  many:
    steps: [{run: "head -c 1700000 /dev/urandom > a.bin && head -c 1700000 /dev/urandom > b.bin"}]
    artifacts: ["*.bin"]
"""


def test_size_limits_end_the_attempt_and_leave_no_partial_file(
    limited: Cluster, tmp_path: Path
) -> None:
    doc = _run(limited, tmp_path, LIMITS)
    huge, many = job(doc, "huge"), job(doc, "many")
    assert (huge["reason"], many["reason"]) == ("artifacts_failed", "artifacts_failed")
    assert "artifact 'huge.bin' is 3.0 MiB, over the limit of 2.0 MiB" in huge["message"]
    assert "over the limit of 3145728 bytes per build" in many["message"]
    kept = limited.json("artifacts", str(doc["id"]))["artifacts"]
    assert [a["name"] for a in kept] == ["a.bin"]
    # Only whole, verified blobs are ever visible; no temp file is left behind.
    assert not list((limited.data_dir / "blobs" / "tmp").iterdir())
    digests = {p.parent.name + p.name for p in _blob_files(limited)}
    assert kept[0]["sha256"] in digests


def _stub(cluster: Cluster) -> blobs_pb2_grpc.BlobServiceStub:
    return blobs_pb2_grpc.BlobServiceStub(wire.insecure_channel(cluster.address))


def _upload(
    stub: blobs_pb2_grpc.BlobServiceStub, data: bytes, sha256: str
) -> blobs_pb2.UploadSourceResponse:
    messages = [
        blobs_pb2.UploadChunk(header=blobs_pb2.UploadHeader(size=len(data))),
        blobs_pb2.UploadChunk(data=data),
        blobs_pb2.UploadChunk(sha256=sha256),
    ]
    return stub.UploadSource(iter(messages), metadata=wire.bearer(CLIENT_TOKEN), timeout=10)


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("member", "wrong_digest", "reason"),
    [
        ("ok.txt", True, "digest mismatch"),
        ("../evil.txt", False, "source file '../evil.txt': path escapes the workspace"),
        ("/etc/evil.txt", False, "source file '/etc/evil.txt': absolute paths are not allowed"),
    ],
)
@pytest.mark.any_store  # refused before a row is written
def test_coordinator_refuses_bad_uploads_and_keeps_nothing(
    limited: Cluster, member: str, wrong_digest: bool, reason: str
) -> None:
    data = _tar(member, b"payload " + member.encode())
    digest = hashlib.sha256(data).hexdigest()
    sent = hashlib.sha256(b"other").hexdigest() if wrong_digest else digest
    stub = _stub(limited)
    with pytest.raises(grpc.RpcError) as refused:
        _upload(stub, data, sent)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason in (refused.value.details() or "")
    request = blobs_pb2.HasBlobRequest(sha256=digest)
    assert not stub.HasBlob(request, metadata=wire.bearer(CLIENT_TOKEN)).present
    assert not list((limited.data_dir / "blobs" / "tmp").iterdir())


ONE = """
name: one
image: conveyor/busybox
jobs:
  a:
    steps: [{run: echo precious > out.txt}]
    artifacts: [out.txt]
"""


def _one_artifact(cluster: Cluster, tmp_path: Path) -> tuple[int, str]:
    result = cluster.cli("run", str(write_pipeline(tmp_path, "one.yml", ONE)), "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    digest: str = cluster.json("artifacts", str(build_id))["artifacts"][0]["sha256"]
    return build_id, digest


@pytest.mark.any_store  # the blob files and the CLI
def test_download_refuses_a_corrupted_blob_and_writes_nothing(
    limited: Cluster, tmp_path: Path
) -> None:
    build_id, digest = _one_artifact(limited, tmp_path)
    blob = limited.data_dir / "blobs" / "sha256" / digest[:2] / digest[2:]
    blob.write_bytes(b"tampered\n")  # same length as "precious\n": only the digest can tell
    out = tmp_path / "out"
    result = limited.cli("artifacts", str(build_id), "--download", str(out))
    assert result.returncode == 1
    assert "digest mismatch" in result.stderr.decode()
    assert [p for p in out.rglob("*") if p.is_file()] == []
    blob.write_bytes(b"precious\n")


@pytest.mark.any_store  # the CLI's own paths
def test_download_never_writes_outside_its_directory(limited: Cluster, tmp_path: Path) -> None:
    build_id, _ = _one_artifact(limited, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(outside)  # planted: the job's directory leads elsewhere
    result = limited.cli("artifacts", str(build_id), "--download", str(out))
    assert result.returncode == 1
    assert "artifact 'a/out.txt': path escapes the download directory" in result.stderr.decode()
    assert list(outside.iterdir()) == []
