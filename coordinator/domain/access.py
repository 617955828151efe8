"""Who may call: the client token for people and tools, the join token for agents.

Agent sessions (after joining) are checked by the agent registry. Users, roles and scoped API
tokens would live here.
"""

from __future__ import annotations

import hmac

from coordinator.domain.errors import AuthError

CLIENT_TOKEN_NAME = "admin"
"""The name of the server's client token: who a build it starts was started by."""


class Access:
    def __init__(self, *, agent_token: str, client_token: str) -> None:
        self._agent_token = agent_token
        self._client_token = client_token

    def check_client(self, token: str | None) -> None:
        if token is None or not hmac.compare_digest(token, self._client_token):
            raise AuthError("missing or wrong client token")

    def check_join(self, token: str) -> None:
        if not hmac.compare_digest(token, self._agent_token):
            raise AuthError("wrong join token")
