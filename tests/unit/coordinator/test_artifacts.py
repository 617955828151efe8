"""Artifacts and sources over fake ports: limits, digests, fencing after the bytes streamed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from conveyor import PROTOCOL_VERSION
from coordinator.domain.artifacts import Upload
from coordinator.domain.content import DigestError
from coordinator.domain.errors import FencedError, LimitError, NotFoundError
from tests.unit.coordinator.fakes import coordinator


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def upload(data: bytes, *, name: str = "out.bin", digest: str = "", size: int = -1) -> Upload:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 4):
            yield data[start : start + 4]

    sha = digest or hashlib.sha256(data).hexdigest()
    return Upload(name, len(data) if size < 0 else size, 0o644, chunks(), lambda: sha)


def source_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("src/a.c")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    return buffer.getvalue()


def test_a_source_is_committed_once_its_digest_and_its_members_check_out() -> None:
    async def main() -> None:
        h = coordinator()
        data = source_tar()
        digest = await h.core.artifacts.upload_source(upload(data))
        assert h.blobs.held[digest] == data
        assert h.state.artifacts.blobs == {digest: len(data)}
        assert await h.core.artifacts.has_blob(digest)
        await h.core.close()

    run(main())


def test_a_bad_upload_leaves_nothing_behind() -> None:
    async def main() -> None:
        h = coordinator()
        data = source_tar()
        with pytest.raises(DigestError):
            await h.core.artifacts.upload_source(upload(data, digest="0" * 64))
        with pytest.raises(ValueError, match="not a valid tar"):
            await h.core.artifacts.upload_source(upload(b"no tar at all"))
        with pytest.raises(ValueError, match="announced"):
            await h.core.artifacts.upload_source(upload(data, size=len(data) + 1))
        assert h.blobs.held == {} and h.state.artifacts.blobs == {}
        assert all(incoming.discarded for incoming in h.blobs.incoming)
        await h.core.close()

    run(main())


def test_a_source_over_the_limit_is_refused_before_any_byte_is_taken() -> None:
    async def main() -> None:
        h = coordinator()
        limit = h.core.config.max_source_bytes
        with pytest.raises(LimitError, match="over the limit"):
            await h.core.artifacts.upload_source(upload(b"", size=limit + 1))
        assert h.blobs.incoming == []
        await h.core.close()

    run(main())


def test_an_artifact_is_refused_when_the_lease_went_while_it_streamed() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await h.core.agents.register(
            join_token="a",
            name="n",
            labels={},
            capacity=1,
            protocol_version=PROTOCOL_VERSION,
            running=(),
        )
        h.state.attempts.queued.append(("j", {}))
        (work,) = (await h.core.agents.poll(joined.agent, 1, draining=False)).assignments
        ok = await h.core.artifacts.upload_artifact(
            joined.agent, work.attempt_id, work.lease_token, upload(b"artifact")
        )
        assert [a.sha256 for a in h.state.artifacts.artifacts_added] == [ok]

        async def expiring() -> AsyncIterator[bytes]:
            yield b"sec"
            h.core.leases.remove(work.attempt_id)  # as if it expired while the bytes came in
            yield b"ond"

        digest = hashlib.sha256(b"second").hexdigest()
        lost = Upload("late.bin", 6, 0o644, expiring(), lambda: digest)
        with pytest.raises(FencedError):
            await h.core.artifacts.upload_artifact(
                joined.agent, work.attempt_id, work.lease_token, lost
            )
        assert digest not in h.blobs.held
        assert len(h.state.artifacts.artifacts_added) == 1
        assert h.blobs.incoming[-1].discarded
        await h.core.close()

    run(main())


def test_a_download_of_a_blob_the_build_does_not_reference_is_not_found() -> None:
    async def main() -> None:
        h = coordinator()
        with pytest.raises(NotFoundError):
            await h.core.artifacts.client_download(1, "ab" * 32)
        with pytest.raises(ValueError, match="invalid sha256"):
            await h.core.artifacts.client_download(1, "../etc/passwd")
        await h.core.close()

    run(main())
