"""AgentBlobService and BlobService: protobuf in and out, the domain in between."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from conveyor import wire
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc
from coordinator.domain.access import MANAGE, READ, RUN
from coordinator.domain.artifacts import Upload
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.registry import AgentSession
from coordinator.edge.convert import artifacts_to_pb, inputs_to_pb
from coordinator.edge.errors import Context, abort_for, unary


class _Stream:
    """Splits an upload stream into its header, its data chunks and its sha256 trailer."""

    def __init__(self, requests: AsyncIterator[blobs_pb2.UploadChunk]) -> None:
        self._requests = requests
        self._sha256: str | None = None

    async def header(self) -> blobs_pb2.UploadHeader:
        first = await anext(self._requests, None)
        if first is None or first.WhichOneof("part") != "header":
            raise ValueError("an upload starts with its header")
        return first.header

    async def data(self) -> AsyncIterator[bytes]:
        async for chunk in self._requests:
            part = chunk.WhichOneof("part")
            if part == "data":
                yield chunk.data
            elif part == "sha256":
                self._sha256 = chunk.sha256
                return
            else:
                raise ValueError("unexpected second header in an upload")

    def trailer(self) -> str:
        if self._sha256 is None:
            raise ValueError("the upload ended without its sha256: refused")
        return self._sha256

    async def upload(self, header: blobs_pb2.UploadHeader) -> Upload:
        return Upload(header.name, header.size, header.mode, self.data(), self.trailer)


class AgentBlobService(blobs_pb2_grpc.AgentBlobServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._artifacts = core.artifacts
        self._agents = core.agents

    def _agent(self, context: Context) -> AgentSession:
        return self._agents.session(wire.token_from_metadata(context.invocation_metadata()))

    @unary
    async def GetInputs(
        self, request: blobs_pb2.GetInputsRequest, context: Context
    ) -> blobs_pb2.GetInputsResponse:
        lease = request.lease
        found = await self._artifacts.inputs(
            self._agent(context), lease.attempt_id, lease.lease_token
        )
        return inputs_to_pb(found)

    @unary
    async def ReportSource(
        self, request: blobs_pb2.ReportSourceRequest, context: Context
    ) -> blobs_pb2.ReportSourceResponse:
        lease = request.lease
        commit = await self._artifacts.report_source(
            self._agent(context),
            lease.attempt_id,
            lease.lease_token,
            request.commit,
            request.committed_at_ms,
        )
        return blobs_pb2.ReportSourceResponse(commit=commit)

    @unary
    async def UploadArtifact(
        self, request: AsyncIterator[blobs_pb2.UploadChunk], context: Context
    ) -> blobs_pb2.UploadArtifactResponse:
        stream = _Stream(request)
        header = await stream.header()
        digest = await self._artifacts.upload_artifact(
            self._agent(context),
            header.lease.attempt_id,
            header.lease.lease_token,
            await stream.upload(header),
        )
        return blobs_pb2.UploadArtifactResponse(sha256=digest)

    async def DownloadBlob(
        self, request: blobs_pb2.AgentDownloadRequest, context: Context
    ) -> AsyncIterator[blobs_pb2.BlobChunk]:
        try:
            lease = request.lease
            chunks = await self._artifacts.agent_download(
                self._agent(context), lease.attempt_id, lease.lease_token, request.sha256
            )
            async for data in chunks:
                yield blobs_pb2.BlobChunk(data=data)
        except Exception as error:
            await abort_for(error, context)


class BlobService(blobs_pb2_grpc.BlobServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._artifacts = core.artifacts
        self._access = core.access

    async def _authorize(self, context: Context, allowed: Sequence[str], action: str) -> None:
        token = wire.token_from_metadata(context.invocation_metadata())
        await self._access.authorize(token, allowed, action)

    @unary
    async def HasBlob(
        self, request: blobs_pb2.HasBlobRequest, context: Context
    ) -> blobs_pb2.HasBlobResponse:
        await self._authorize(context, RUN, "upload sources")
        return blobs_pb2.HasBlobResponse(present=await self._artifacts.has_blob(request.sha256))

    @unary
    async def UploadSource(
        self, request: AsyncIterator[blobs_pb2.UploadChunk], context: Context
    ) -> blobs_pb2.UploadSourceResponse:
        await self._authorize(context, RUN, "upload sources")
        stream = _Stream(request)
        header = await stream.header()
        digest = await self._artifacts.upload_source(await stream.upload(header))
        return blobs_pb2.UploadSourceResponse(sha256=digest)

    @unary
    async def ListArtifacts(
        self, request: blobs_pb2.ListArtifactsRequest, context: Context
    ) -> blobs_pb2.ListArtifactsResponse:
        await self._authorize(context, READ, "read artifacts")
        artifacts, source = await self._artifacts.list(request.build_id)
        return artifacts_to_pb(artifacts, source)

    async def DownloadArtifact(
        self, request: blobs_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[blobs_pb2.BlobChunk]:
        try:
            await self._authorize(context, READ, "download artifacts")
            chunks = await self._artifacts.client_download(request.build_id, request.sha256)
            async for data in chunks:
                yield blobs_pb2.BlobChunk(data=data)
        except Exception as error:
            await abort_for(error, context)

    @unary
    async def CollectGarbage(
        self, request: blobs_pb2.CollectGarbageRequest, context: Context
    ) -> blobs_pb2.CollectGarbageResponse:
        await self._authorize(context, MANAGE, "collect garbage")
        result = await self._artifacts.collect(request.older_than_ms / 1000)
        return blobs_pb2.CollectGarbageResponse(
            builds=result.builds, blobs=result.blobs, bytes=result.bytes
        )


__all__ = ["AgentBlobService", "BlobService"]
