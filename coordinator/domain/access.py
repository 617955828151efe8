"""Who may call: the client token for people and tools, the join token for agents.

Agent sessions (after joining) are checked by the agent registry. A client call's principal (token
name and role) is what actions are recorded under and what role checks are made against.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from conveyor.pipeline.gates import ROLES
from coordinator.domain.errors import AuthError, RoleError

SERVER_TOKEN_NAME: Final = "admin"
"""The name the server's own client token is recorded under (who approved, who canceled)."""


@dataclass(frozen=True)
class Principal:
    """Who a call is from: the name of the token it presented, and that token's role."""

    name: str
    role: str


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


CLIENT_TOKEN_NAME = "admin"
"""The name of the server's client token: who a build it starts was started by."""


class Access:
    def __init__(self, *, agent_token: str, client_token: str) -> None:
        self._agent_token = agent_token
        self._client_token = client_token

    def check_client(self, token: str | None) -> Principal:
        """The principal a client token stands for; AuthError for a missing or wrong one."""
        if token is None or not hmac.compare_digest(token, self._client_token):
            raise AuthError("missing or wrong client token")
        # One token today, the server's own; named tokens with lesser roles come with security.
        return Principal(SERVER_TOKEN_NAME, "admin")

    def check_join(self, token: str) -> None:
        if not hmac.compare_digest(token, self._agent_token):
            raise AuthError("wrong join token")
