"""The domain API for bytes: source snapshots in, artifacts in and out, garbage collection.

Lives beside the `Coordinator` and uses its store thread, I/O threads and lease table,
 so artifact calls are fenced exactly like step and log calls. Blob files are committed and
removed on the store thread, serialised with the rows that reference them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from conveyor.paths import check_name, format_size
from conveyor.pipeline import ArtifactRule, load_pipeline
from coordinator.config import BLOB_CHUNK_BYTES, MAX_BUILD_ARTIFACTS
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import NotFoundError
from coordinator.storage.blobs import BlobStore, Incoming, check_digest, check_source_tar
from coordinator.store.artifacts import (
    ArtifactRecord,
    Collected,
    LimitError,
    NewArtifact,
    SourceSpec,
)

LOGGER = logging.getLogger(__name__)


class AgentSession(Protocol):
    """What these calls need of the calling agent's session (see Coordinator.agent_for)."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True)
class AttemptInputs:
    source: SourceSpec | None
    needed: tuple[ArtifactRecord, ...]
    rule: ArtifactRule
    snapshot_size: int


@dataclass(frozen=True)
class Upload:
    """One incoming file as the gRPC layer hands it over: its header, its data, its trailer."""

    name: str
    size: int
    mode: int
    data: AsyncIterator[bytes]
    trailer: Callable[[], str]  # the sender's sha256, known once `data` is exhausted


@dataclass(frozen=True)
class GcResult:
    builds: int
    blobs: int
    bytes: int


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


class Artifacts:
    def __init__(self, core: Coordinator) -> None:
        self.core = core
        self._config = core.config
        self.meta = core.store.artifacts
        self.blobs = BlobStore(core.config.blob_dir)

    # Agent-facing (fenced)

    async def inputs(self, agent: AgentSession, attempt_id: int, token: str) -> AttemptInputs:
        self.core.leases.check(agent.id, attempt_id, token)
        found = await self.core.db(self.meta.inputs, attempt_id)
        # Parsed off the event loop: a pipeline may be up to 1 MiB of YAML.
        pipeline = await self.core.io(load_pipeline, found.pipeline_yaml)
        rule = pipeline.job(found.job_name).artifacts
        return AttemptInputs(found.source, found.needed, rule, found.snapshot_size)

    async def report_source(
        self, agent: AgentSession, attempt_id: int, token: str, commit: str
    ) -> str:
        lease = self.core.leases.check(agent.id, attempt_id, token)
        if len(commit) not in (40, 64) or not all(c in "0123456789abcdef" for c in commit):
            raise ValueError(f"invalid commit id {commit!r}")
        return await self.core.db(self.meta.set_commit, lease.build_id, commit)

    async def upload_artifact(
        self, agent: AgentSession, attempt_id: int, token: str, upload: Upload
    ) -> str:
        lease = self.core.leases.check(agent.id, attempt_id, token)
        name = check_name(upload.name)
        self._check_size(f"artifact {name!r}", upload.size, self._config.max_artifact_bytes)
        await self.core.db(
            self.meta.check_room,
            lease.build_id,
            upload.size,
            self._config.max_build_artifact_bytes,
            MAX_BUILD_ARTIFACTS,
        )
        incoming = await self._receive(upload, f"artifact {name!r}")
        try:
            digest = await self.core.io(incoming.seal, upload.trailer())
            # The lease may have been lost while the bytes streamed in.
            self.core.leases.check(agent.id, attempt_id, token)
            new = NewArtifact(
                lease.build_id, attempt_id, name, digest, upload.size, upload.mode & 0o7777
            )
            await self.core.db(self._commit_artifact, incoming, new)
        except BaseException:
            await self.core.io(incoming.discard)
            raise
        LOGGER.info(
            "build %d attempt %d: artifact %s (%s) stored",
            lease.build_id,
            attempt_id,
            name,
            format_size(upload.size),
        )
        return digest

    def _commit_artifact(self, incoming: Incoming, new: NewArtifact) -> None:
        self.meta.check_room(
            new.build_id, new.size, self._config.max_build_artifact_bytes, MAX_BUILD_ARTIFACTS
        )
        self.blobs.commit(incoming, new.sha256)
        self.meta.add_artifact(new, self._config.max_build_artifact_bytes, MAX_BUILD_ARTIFACTS)

    async def agent_download(
        self, agent: AgentSession, attempt_id: int, token: str, digest: str
    ) -> AsyncIterator[bytes]:
        lease = self.core.leases.check(agent.id, attempt_id, token)
        check_digest(digest)
        # Only what the attempt's own build references: its source and its artifacts.
        if not await self.core.db(self.meta.blob_of_build, lease.build_id, digest):
            raise NotFoundError(f"build {lease.build_id} has no blob {digest}")
        return self._read(digest)

    # Client-facing

    async def has_blob(self, digest: str) -> bool:
        check_digest(digest)
        return await self.core.db(self._has, digest)

    def _has(self, digest: str) -> bool:
        return self.meta.has_blob(digest) and self.blobs.has(digest)

    async def upload_source(self, upload: Upload) -> str:
        self._check_size("the source snapshot", upload.size, self._config.max_source_bytes)
        incoming = await self._receive(upload, "the source snapshot")
        try:
            digest = await self.core.io(incoming.seal, upload.trailer())
            count = await self.core.io(check_source_tar, incoming.path)
            await self.core.db(self._commit_source, incoming, digest, upload.size)
        except BaseException:
            await self.core.io(incoming.discard)
            raise
        LOGGER.info(
            "source snapshot %s stored (%d entries, %s)",
            digest[:12],
            count,
            format_size(upload.size),
        )
        return digest

    def _commit_source(self, incoming: Incoming, digest: str, size: int) -> None:
        self.blobs.commit(incoming, digest)
        self.meta.add_blob(digest, size)

    async def list(self, build_id: int) -> tuple[list[ArtifactRecord], SourceSpec | None]:
        return await self.core.db(self.meta.artifacts, build_id)

    async def client_download(self, build_id: int, digest: str) -> AsyncIterator[bytes]:
        check_digest(digest)
        if not await self.core.db(self.meta.blob_of_build, build_id, digest):
            raise NotFoundError(f"build {build_id} has no artifact with digest {digest}")
        return self._read(digest)

    async def collect(self, older_than_s: float) -> GcResult:
        cutoff_ms = int((time.time() - older_than_s) * 1000)
        collected: Collected = await self.core.db(self.meta.collect, cutoff_ms)
        freed = 0
        for digest in collected.digests:
            freed += await self.core.db(self.blobs.remove, digest)
        LOGGER.info(
            "gc: dropped artifacts and sources of %d builds; removed %d blobs (%s)",
            collected.builds,
            len(collected.digests),
            format_size(freed),
        )
        return GcResult(collected.builds, len(collected.digests), freed)

    async def source_exists(self, digest: str) -> None:
        if not await self.has_blob(digest):
            raise NotFoundError(f"source snapshot {digest} is not on the coordinator; upload it")

    # Bytes

    def _check_size(self, what: str, size: int, limit: int) -> None:
        if size < 0:
            raise ValueError(f"{what}: invalid size {size}")
        if size > limit:
            raise LimitError(
                f"{what} is {format_size(size)}, over the limit of {format_size(limit)}"
            )

    async def _receive(self, upload: Upload, what: str) -> Incoming:
        incoming = await self.core.io(self.blobs.begin)
        try:
            async for data in upload.data:
                if incoming.size + len(data) > upload.size:
                    raise ValueError(f"{what}: more bytes than the announced {upload.size}")
                await self.core.io(incoming.write, data)
            if incoming.size != upload.size:
                raise ValueError(f"{what}: {incoming.size} bytes arrived, {upload.size} announced")
        except BaseException:
            await self.core.io(incoming.discard)
            raise
        return incoming

    async def _read(self, digest: str) -> AsyncIterator[bytes]:
        path = self.blobs.path(digest)
        try:
            handle = await self.core.io(_open_binary, path)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not on the coordinator") from None
        try:
            while chunk := await self.core.io(handle.read, BLOB_CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()
