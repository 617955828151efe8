"""SecretService: `conveyor secret set | list | rm`; protobuf in and out, the domain in between.

Requests carry a value in only one place (SetSecret) and no answer carries one.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor import wire
from conveyor.v1 import secrets_pb2, secrets_pb2_grpc
from coordinator.domain.access import MANAGE, READ, Principal
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.secret_records import SecretRecord
from coordinator.edge.errors import Context, unary


def secret_to_pb(record: SecretRecord) -> secrets_pb2.Secret:
    return secrets_pb2.Secret(
        name=record.name,
        environment=record.scope,
        updated_at_ms=record.updated_at_ms,
        updated_by=record.updated_by,
    )


class SecretService(secrets_pb2_grpc.SecretServiceServicer):
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._secrets = core.secrets

    async def _authorize(self, context: Context, allowed: Sequence[str], action: str) -> Principal:
        token = wire.token_from_metadata(context.invocation_metadata())
        return await self._access.authorize(token, allowed, action)

    @unary
    async def SetSecret(
        self, request: secrets_pb2.SetSecretRequest, context: Context
    ) -> secrets_pb2.Secret:
        principal = await self._authorize(context, MANAGE, f"set secret {request.name!r}")
        record = await self._secrets.set(
            principal, request.name, request.environment, request.value
        )
        return secret_to_pb(record)

    @unary
    async def ListSecrets(
        self, request: secrets_pb2.ListSecretsRequest, context: Context
    ) -> secrets_pb2.ListSecretsResponse:
        records = await self._secrets.list(await self._authorize(context, READ, "list secrets"))
        return secrets_pb2.ListSecretsResponse(secrets=[secret_to_pb(r) for r in records])

    @unary
    async def RemoveSecret(
        self, request: secrets_pb2.RemoveSecretRequest, context: Context
    ) -> secrets_pb2.Secret:
        principal = await self._authorize(context, MANAGE, f"remove secret {request.name!r}")
        record = await self._secrets.remove(principal, request.name, request.environment)
        return secret_to_pb(record)


__all__ = ["SecretService"]
