"""Content-addressed blobs: only whole, verified files are ever visible."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from conveyor.paths import UnsafePathError
from coordinator.domain.content import DigestError, check_source_tar
from coordinator.storage.blobs import BlobStore


def test_verified_blob_is_committed_under_its_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"x" * 3_000_000
    digest = hashlib.sha256(data).hexdigest()
    incoming = store.begin()
    incoming.write(data[:1_000_000])
    assert not store.has(digest)  # nothing visible while it streams in
    incoming.write(data[1_000_000:])
    incoming.seal(digest)
    assert not store.has(digest)
    incoming.commit(digest)
    assert store.path(digest) == tmp_path / "sha256" / digest[:2] / digest[2:]
    with store.open(digest) as handle:
        assert handle.read() == data
    assert list((tmp_path / "tmp").iterdir()) == []


def test_digest_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    incoming = store.begin()
    incoming.write(b"real bytes")
    claimed = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(DigestError, match="digest mismatch"):
        incoming.seal(claimed)
    incoming.discard()
    assert not store.has(claimed)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_leftover_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    BlobStore(tmp_path).begin().write(b"half")
    BlobStore(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_invalid_digest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid sha256"):
        BlobStore(tmp_path).path("../../etc/passwd")


def test_a_second_copy_of_a_blob_keeps_the_first(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = hashlib.sha256(b"same").hexdigest()
    for _ in range(2):
        incoming = store.begin()
        incoming.write(b"same")
        incoming.seal(digest)
        incoming.commit(digest)
    assert store.has(digest)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert store.remove(digest) == 4
    assert store.remove(digest) == 0
    with pytest.raises(FileNotFoundError):
        store.open(digest)


def _tar(tmp_path: Path, name: str, *, link: str = "") -> Path:
    path = tmp_path / "source.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.LNKTYPE, link
            archive.addfile(info)
        else:
            info.size = 2
            archive.addfile(info, io.BytesIO(b"hi"))
    return path


def _check(path: Path) -> int:
    with path.open("rb") as data:
        return check_source_tar(data)


@pytest.mark.parametrize(
    ("name", "link", "reason"),
    [
        ("../x", "", "path escapes the workspace"),
        ("/etc/x", "", "absolute paths are not allowed"),
        ("ok", "../../etc/shadow", "hard link target"),
    ],
)
def test_source_tar_members_must_stay_inside(
    tmp_path: Path, name: str, link: str, reason: str
) -> None:
    with pytest.raises(UnsafePathError, match=reason):
        _check(_tar(tmp_path, name, link=link))


def test_source_tar_with_plain_members_passes(tmp_path: Path) -> None:
    assert _check(_tar(tmp_path, "./src/a.c")) == 1


def test_a_source_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"not a tar" * 100)
    with pytest.raises(ValueError, match="not a valid tar archive"):
        _check(path)
