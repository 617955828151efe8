"""Bytes in and out: source snapshots in, artifacts in and out, garbage collection.

Agent calls are fenced by the attempt's lease exactly like step and log calls. Blob bytes stream
on the I/O threads; a blob is committed and removed on the store thread, serialised with the
rows that reference it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import BinaryIO

from conveyor.paths import check_name, format_size
from conveyor.pipeline import load_pipeline
from coordinator.config import (
    BLOB_CHUNK_BYTES,
    MAX_BUILD_ARTIFACTS,
    MAX_GC_AGE_S,
    CoordinatorConfig,
)
from coordinator.domain.artifact_records import (
    ArtifactRecord,
    Inputs,
    NewArtifact,
    SourceSpec,
    duplicate_artifact_message,
)
from coordinator.domain.bounds import check_range
from coordinator.domain.content import check_commit, check_digest, check_source_tar
from coordinator.domain.errors import AlreadyExistsError, LimitError, NotFoundError, OutOfRangeError
from coordinator.domain.leases import LeaseTable
from coordinator.domain.ports import ArtifactIndex, BlobStorage, IncomingBlob
from coordinator.domain.registry import AgentSession
from coordinator.domain.runtime import Runtime

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptInputs:
    """What an attempt starts from, and which of its files it must keep."""

    source: SourceSpec | None
    needed: tuple[ArtifactRecord, ...]
    artifact_paths: tuple[str, ...]
    artifacts_always: bool  # kept even when the attempt fails
    snapshot_size: int


def attempt_inputs(found: Inputs) -> AttemptInputs | None:
    """The inputs as the agent gets them; None when the artifact rule is only in the pipeline
    (a job stored before its spec kept it), which must be parsed for it."""
    if found.artifact_paths is None:
        return None
    return AttemptInputs(
        found.source,
        found.needed,
        found.artifact_paths,
        found.artifacts_always,
        found.snapshot_size,
    )


@dataclass(frozen=True)
class Upload:
    """One incoming file as an edge hands it over: its header, its data, its trailer."""

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


class Artifacts:
    def __init__(
        self,
        *,
        config: CoordinatorConfig,
        runtime: Runtime,
        index: ArtifactIndex,
        blobs: BlobStorage,
        leases: LeaseTable,
    ) -> None:
        self._config = config
        self._runtime = runtime
        self._index = index
        self._blobs = blobs
        self._leases = leases

    # Agent-facing (fenced)

    async def inputs(self, agent: AgentSession, attempt_id: int, token: str) -> AttemptInputs:
        self._leases.check(agent.id, attempt_id, token)
        found = await self._runtime.db(self._index.inputs, attempt_id)
        ready = attempt_inputs(found)
        if ready is not None:
            return ready
        # A job stored before its spec kept the rule: parsed off the event loop (a pipeline
        # may be up to 1 MiB of YAML).
        pipeline = await self._runtime.io(load_pipeline, found.pipeline_yaml, recorded=True)
        rule = pipeline.job(found.job_name).artifacts
        paths, always = tuple(rule.paths), rule.when == "always"
        return AttemptInputs(found.source, found.needed, paths, always, found.snapshot_size)

    async def report_source(
        self, agent: AgentSession, attempt_id: int, token: str, commit: str, committed_at_ms: int
    ) -> str:
        """Records the commit an attempt's git ref resolved to; `committed_at_ms` 0 is unknown."""
        lease = self._leases.check(agent.id, attempt_id, token)
        check_commit(commit)
        check_range("committed_at_ms", committed_at_ms, 0, 2**63 - 1)
        when = committed_at_ms or None
        return await self._runtime.db(self._index.set_commit, lease.build_id, commit, when)

    async def upload_artifact(
        self, agent: AgentSession, attempt_id: int, token: str, upload: Upload
    ) -> str:
        lease = self._leases.check(agent.id, attempt_id, token)
        name = check_name(upload.name)
        check_range("mode", upload.mode, 0, 0o7777)
        self._check_size(f"artifact {name!r}", upload.size, self._config.max_artifact_bytes)
        await self._runtime.db(
            self._index.check_room,
            lease.build_id,
            upload.size,
            self._config.max_build_artifact_bytes,
            MAX_BUILD_ARTIFACTS,
        )
        incoming = await self._receive(upload, f"artifact {name!r}")
        try:
            digest = await self._runtime.io(incoming.seal, upload.trailer())
            # The lease may have been lost while the bytes streamed in.
            self._leases.check(agent.id, attempt_id, token)
            new = NewArtifact(lease.build_id, attempt_id, name, digest, upload.size, upload.mode)
            await self._runtime.db(self._commit_artifact, incoming, new)
        except BaseException:
            await self._runtime.io(incoming.discard)
            raise
        LOGGER.info(
            "build %d attempt %d: artifact %s (%s) stored",
            lease.build_id,
            attempt_id,
            name,
            format_size(upload.size),
        )
        return digest

    def _commit_artifact(self, incoming: IncomingBlob, new: NewArtifact) -> None:
        # Refused before the blob is put in place, so a refused file leaves nothing behind; the
        # store checks again, atomically. The identical file resent is accepted (idempotent).
        held = self._index.artifact_digest(new.attempt_id, new.name)
        if held is not None and held != new.sha256:
            raise AlreadyExistsError(duplicate_artifact_message(new.name, held))
        if held is None:  # a resent file takes no more room
            self._index.check_room(
                new.build_id, new.size, self._config.max_build_artifact_bytes, MAX_BUILD_ARTIFACTS
            )
        incoming.commit(new.sha256)
        self._index.add_artifact(new, self._config.max_build_artifact_bytes, MAX_BUILD_ARTIFACTS)

    async def agent_download(
        self, agent: AgentSession, attempt_id: int, token: str, digest: str
    ) -> AsyncIterator[bytes]:
        lease = self._leases.check(agent.id, attempt_id, token)
        check_digest(digest)
        # Only what the attempt's own build references: its source and its artifacts.
        if not await self._runtime.db(self._index.blob_of_build, lease.build_id, digest):
            raise NotFoundError(f"build {lease.build_id} has no blob {digest}")
        return self._read(digest)

    # Client-facing

    async def has_blob(self, digest: str) -> bool:
        check_digest(digest)
        return await self._runtime.db(self._has, digest)

    def _has(self, digest: str) -> bool:
        return self._index.has_blob(digest) and self._blobs.has(digest)

    async def upload_source(self, upload: Upload) -> str:
        self._check_size("the source snapshot", upload.size, self._config.max_source_bytes)
        incoming = await self._receive(upload, "the source snapshot")
        try:
            digest = await self._runtime.io(incoming.seal, upload.trailer())
            count = await self._runtime.io(_check_tar, incoming)
            await self._runtime.db(self._commit_source, incoming, digest, upload.size)
        except BaseException:
            await self._runtime.io(incoming.discard)
            raise
        LOGGER.info(
            "source snapshot %s stored (%d entries, %s)",
            digest[:12],
            count,
            format_size(upload.size),
        )
        return digest

    def _commit_source(self, incoming: IncomingBlob, digest: str, size: int) -> None:
        incoming.commit(digest)
        self._index.add_blob(digest, size)

    async def list(self, build_id: int) -> tuple[list[ArtifactRecord], SourceSpec | None]:
        return await self._runtime.db(self._index.artifacts, build_id)

    async def client_download(self, build_id: int, digest: str) -> AsyncIterator[bytes]:
        check_digest(digest)
        if not await self._runtime.db(self._index.blob_of_build, build_id, digest):
            raise NotFoundError(f"build {build_id} has no artifact with digest {digest}")
        return self._read(digest)

    async def collect(self, older_than_s: float) -> GcResult:
        if not 0 <= older_than_s <= MAX_GC_AGE_S:  # nan too
            raise OutOfRangeError(
                f"older_than {older_than_s:g} s is out of range (0..{MAX_GC_AGE_S} s)"
            )
        cutoff_ms = int((time.time() - older_than_s) * 1000)
        collected = await self._runtime.db(self._index.collect, cutoff_ms)
        freed = 0
        for digest in collected.digests:
            freed += await self._runtime.db(self._blobs.remove, digest)
        LOGGER.info(
            "gc: dropped artifacts and sources of %d builds; removed %d blobs (%s)",
            collected.builds,
            len(collected.digests),
            format_size(freed),
        )
        return GcResult(collected.builds, len(collected.digests), freed)

    # Bytes

    def _check_size(self, what: str, size: int, limit: int) -> None:
        if size < 0:
            raise ValueError(f"{what}: invalid size {size}")
        if size > limit:
            raise LimitError(
                f"{what} is {format_size(size)}, over the limit of {format_size(limit)}"
            )

    async def _receive(self, upload: Upload, what: str) -> IncomingBlob:
        incoming = await self._runtime.io(self._blobs.begin)
        try:
            async for data in upload.data:
                if incoming.size + len(data) > upload.size:
                    raise ValueError(f"{what}: more bytes than the announced {upload.size}")
                await self._runtime.io(incoming.write, data)
            if incoming.size != upload.size:
                raise ValueError(f"{what}: {incoming.size} bytes arrived, {upload.size} announced")
        except BaseException:
            await self._runtime.io(incoming.discard)
            raise
        return incoming

    async def _read(self, digest: str) -> AsyncIterator[bytes]:
        try:
            handle: BinaryIO = await self._runtime.io(self._blobs.open, digest)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not on the coordinator") from None
        try:
            while chunk := await self._runtime.io(handle.read, BLOB_CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()


def _check_tar(incoming: IncomingBlob) -> int:
    with incoming.open() as data:
        return check_source_tar(data)
