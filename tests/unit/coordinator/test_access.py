"""Client tokens over fake ports: the server's own is admin, named ones carry their role, a
revoked one is refused; a revoked agent is cut off and its attempts are lost."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from conveyor import PROTOCOL_VERSION
from coordinator.domain.access import MANAGE, READ, RUN, TOKEN_PREFIX, Principal, token_hash
from coordinator.domain.errors import AlreadyExistsError, AuthError, NotFoundError, RoleError
from tests.unit.coordinator.fakes import Harness, coordinator

BOSS = Principal("admin", "admin")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_the_server_token_is_admin_and_a_named_one_has_its_role() -> None:
    async def main() -> None:
        h = coordinator()
        access = h.core.access
        assert await access.authorize("c", MANAGE, "create tokens") == BOSS
        for wrong in (None, "", "nope", "c" * 10_000):
            with pytest.raises(AuthError):
                await access.authorize(wrong, READ, "read builds")
        record, secret = await access.create_token(BOSS, "ci", "developer")
        assert (record.name, record.role) == ("ci", "developer")
        assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
        # Kept as its hash only.
        assert h.state.tokens.rows["ci"][1] == token_hash(secret) != secret
        assert await access.authorize(secret, RUN, "run builds") == Principal("ci", "developer")
        with pytest.raises(RoleError) as refused:
            await access.authorize(secret, MANAGE, "create tokens")
        assert str(refused.value) == (
            "token 'ci' (role developer) may not create tokens; allowed: admin or above"
        )
        await access.revoke_token(BOSS, "ci")
        with pytest.raises(AuthError, match="revoked"):
            await access.authorize(secret, READ, "read builds")
        await h.core.close()

    run(main())


def test_a_new_token_needs_a_fresh_valid_name_and_a_known_role() -> None:
    async def main() -> None:
        h = coordinator()
        access = h.core.access
        with pytest.raises(AlreadyExistsError, match="server's own"):
            await access.create_token(BOSS, "admin", "viewer")
        with pytest.raises(ValueError, match="role: 'root'"):
            await access.create_token(BOSS, "x", "root")
        for name in ("", "-x", "a b", "x" * 65):
            with pytest.raises(ValueError, match="name"):
                await access.create_token(BOSS, name, "viewer")
        await access.create_token(BOSS, "x", "viewer")
        with pytest.raises(AlreadyExistsError):
            await access.create_token(BOSS, "x", "viewer")
        with pytest.raises(NotFoundError, match="server's own"):
            await access.revoke_token(BOSS, "admin")
        assert [t.name for t in await access.tokens()] == ["x"]
        await h.core.close()

    run(main())


async def _join(h: Harness, name: str, credential: str = "") -> Any:
    return await h.core.agents.register(
        join_token="a",
        name=name,
        labels={},
        capacity=1,
        protocol_version=PROTOCOL_VERSION,
        running=(),
        agent_credential=credential,
    )


def test_a_revoked_agent_loses_its_session_and_its_name() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await _join(h, "w")
        await h.core.agents.revoke("w", BOSS)
        with pytest.raises(AuthError):
            h.core.agents.session(joined.session_token)
        for credential in (joined.agent_credential, ""):
            with pytest.raises(AuthError, match="'w' was revoked by an operator"):
                await _join(h, "w", credential)
        assert [s.state for s in await h.core.agents.list()] == ["revoked"]
        await h.core.close()

    run(main())
