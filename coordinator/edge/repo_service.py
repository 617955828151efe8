"""RepoService: `conveyor repo add | list | remove`; protobuf in and out, the domain in between.

No answer carries a webhook secret: only whether a repository has one.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor import wire
from conveyor.v1 import repos_pb2, repos_pb2_grpc
from coordinator.domain.access import MANAGE, Principal
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.repo_records import DEFAULT_HEAD, RepoRecord
from coordinator.edge.errors import Context, unary


def repo_to_pb(record: RepoRecord) -> repos_pb2.Repo:
    return repos_pb2.Repo(
        name=record.name,
        url=record.url,
        pipeline_path=record.pipeline_path,
        poll_s=record.poll_s,
        has_webhook_secret=record.sealed_secret is not None,
        heads=[
            repos_pb2.RepoHead(ref=ref, commit=commit)
            for ref, commit in sorted(record.heads.items())
            if ref != DEFAULT_HEAD
        ],
        last_check_ms=record.last_check_ms or 0,
        last_error=record.last_error,
        failures=record.failures,
        next_check_ms=record.next_check_ms,
        created_at_ms=record.created_at_ms,
        created_by=record.created_by,
    )


class RepoService(repos_pb2_grpc.RepoServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._repos = core.repos

    async def _authorize(self, context: Context, allowed: Sequence[str], action: str) -> Principal:
        token = wire.token_from_metadata(context.invocation_metadata())
        return await self._access.authorize(token, allowed, action)

    @unary
    async def AddRepo(self, request: repos_pb2.AddRepoRequest, context: Context) -> repos_pb2.Repo:
        principal = await self._authorize(context, MANAGE, f"add repository {request.name!r}")
        record = await self._repos.add(
            principal,
            request.name,
            request.url,
            pipeline_path=request.pipeline_path,
            poll_s=request.poll_s,
            webhook_secret=request.webhook_secret,
        )
        return repo_to_pb(record)

    @unary
    async def ListRepos(
        self, request: repos_pb2.ListReposRequest, context: Context
    ) -> repos_pb2.ListReposResponse:
        records = await self._repos.list(
            await self._authorize(context, MANAGE, "list repositories")
        )
        return repos_pb2.ListReposResponse(repos=[repo_to_pb(r) for r in records])

    @unary
    async def RemoveRepo(
        self, request: repos_pb2.RemoveRepoRequest, context: Context
    ) -> repos_pb2.Repo:
        principal = await self._authorize(context, MANAGE, f"remove repository {request.name!r}")
        return repo_to_pb(await self._repos.remove(principal, request.name))


__all__ = ["RepoService"]
