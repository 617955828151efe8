"""Who may call: client tokens (the server's own, and named ones with roles) and the join token.

Agent sessions (after joining) are checked by the agent registry. A client call's principal (token
name and role) is what actions are recorded under and what role checks are made against. Named
tokens are kept only as SHA-256 hashes and looked up by hash on every call, in the store, so a
revoked token is refused at once, by every coordinator sharing the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from conveyor.pipeline.gates import ROLES
from coordinator.config import (
    MAX_PRESENTED_TOKEN_CHARS,
    MAX_TOKEN_NAME_CHARS,
    TOKEN_SECRET_BYTES,
    TOKEN_TOUCH_INTERVAL_S,
)
from coordinator.domain.errors import AlreadyExistsError, AuthError, NotFoundError, RoleError

if TYPE_CHECKING:  # ports names this module's constants: a runtime import would be a cycle
    from coordinator.domain.ports import TokenStore
    from coordinator.domain.records import TokenRecord
    from coordinator.domain.runtime import Runtime

SERVER_TOKEN_NAME: Final = "admin"
"""The name the server's own client token is recorded under (who approved, who canceled)."""
CLIENT_TOKEN_NAME: Final = SERVER_TOKEN_NAME

# What each kind of call needs (roles are cumulative: each admits the roles above it).
READ: Final = ("viewer",)
RUN: Final = ("developer",)  # run, cancel, retry
DEPLOY: Final = ("deployer",)  # approve, reject, roll back
MANAGE: Final = ("admin",)  # agents, tokens, secrets, repositories, garbage collection

# Named tokens carry this prefix, so a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX: Final = "cvt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Principal:
    """Who a call is from: the name of the token it presented, and that token's role."""

    name: str
    role: str


SERVER_PRINCIPAL: Final = Principal(SERVER_TOKEN_NAME, "admin")


def role_admits(role: str, allowed: Sequence[str]) -> bool:
    """Whether `role` is one of `allowed` or above the lowest of them; unknown roles admit none."""
    if role not in ROLES:
        return False
    ranks = [ROLES.index(name) for name in allowed if name in ROLES]
    return bool(ranks) and ROLES.index(role) >= min(ranks)


def check_role(principal: Principal, allowed: Sequence[str], action: str) -> None:
    """RoleError naming the action, the token and the roles that may, unless `principal` may."""
    if not role_admits(principal.role, allowed):
        raise RoleError(
            f"token {principal.name!r} (role {principal.role}) may not {action}; "
            f"allowed: {', '.join(allowed)} or above"
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_name(name: str) -> None:
    """ValueError (INVALID_ARGUMENT) naming the problem with a new token's name."""
    if not name:
        raise ValueError("name: a token needs a name")
    if len(name) > MAX_TOKEN_NAME_CHARS:
        raise ValueError(f"name: {len(name)} characters, at most {MAX_TOKEN_NAME_CHARS}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"name: {name!r} may hold only letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )


class Access:
    def __init__(
        self, *, agent_token: str, client_token: str, runtime: Runtime, tokens: TokenStore
    ) -> None:
        self._agent_token = agent_token
        self._client_token = client_token
        self._runtime = runtime
        self._tokens = tokens

    async def authorize(self, token: str | None, allowed: Sequence[str], action: str) -> Principal:
        """The principal a client token stands for, if its role is one of `allowed` (or above).

        AuthError for a missing, unknown or revoked token; RoleError naming the token, its role
        and the roles that may, for a role that may not."""
        principal = await self.authenticate(token)
        check_role(principal, allowed, action)
        return principal

    async def authenticate(self, token: str | None) -> Principal:
        if token is None or len(token) > MAX_PRESENTED_TOKEN_CHARS:
            raise AuthError("missing or wrong client token")
        if hmac.compare_digest(token.encode(), self._client_token.encode()):
            return SERVER_PRINCIPAL
        # Looked up by its hash: the secret is never compared, nor kept, as itself.
        now_ms = int(time.time() * 1000)
        found = await self._runtime.db(
            self._tokens.authenticate,
            token_hash(token),
            now_ms,
            now_ms - int(TOKEN_TOUCH_INTERVAL_S * 1000),
        )
        if found is None:
            raise AuthError("missing, wrong or revoked client token")
        return Principal(found.name, found.role)

    def check_join(self, token: str) -> None:
        if not hmac.compare_digest(token.encode(), self._agent_token.encode()):
            raise AuthError("wrong join token")

    async def create_token(self, by: Principal, name: str, role: str) -> tuple[TokenRecord, str]:
        """A new named token with `role`; returns it and its secret, shown this once only."""
        check_token_name(name)
        if role not in ROLES:
            raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        if name == SERVER_TOKEN_NAME:
            raise AlreadyExistsError(
                f"token name {name!r} is the server's own client token; choose another name"
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        record = await self._runtime.db(
            self._tokens.create, name, role, token_hash(secret), by.name
        )
        return record, secret

    async def tokens(self) -> list[TokenRecord]:
        return await self._runtime.db(self._tokens.list)

    async def revoke_token(self, by: Principal, name: str) -> TokenRecord:
        if name == SERVER_TOKEN_NAME:
            raise NotFoundError(
                f"token {name!r} is the server's own (--client-token): it is changed by "
                "restarting the server with another, not revoked"
            )
        return await self._runtime.db(self._tokens.revoke, name, by.name)
