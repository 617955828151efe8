"""Webhooks of watched repositories (`POST /hooks/git/NAME`): GitHub, Gitea and GitLab pushes.

The signature is the credential: GitHub's `X-Hub-Signature-256: sha256=HEX` and Gitea's
`X-Gitea-Signature: HEX` are the HMAC-SHA256 of the raw body with the repository's secret;
GitLab's `X-Gitlab-Token` is the secret itself. Every comparison is constant-time. A valid push
starts a check of the repository at once; the payload's commits are not trusted (the check reads
the repository). Anything refused changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from coordinator.domain.errors import AuthError, NotFoundError, SealError
from coordinator.domain.repos import Repos, check_name
from coordinator.domain.runtime import Runtime
from coordinator.domain.watcher import Watcher

# The event names each forge sends a push as (header name, lower case, to the values).
_PUSH_EVENTS = {
    "x-github-event": ("push",),
    "x-gitea-event": ("push",),
    "x-gogs-event": ("push",),
    "x-gitlab-event": ("push hook", "tag push hook"),
}
CHECKING, IGNORED = "checking", "ignored"


def signature_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request carries a valid signature (or token) made with `secret`."""
    key = secret.encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    github = headers.get("x-hub-signature-256")
    if github is not None:
        return hmac.compare_digest(github.strip().lower().encode(), f"sha256={digest}".encode())
    gitea = headers.get("x-gitea-signature")
    if gitea is not None:
        return hmac.compare_digest(gitea.strip().lower().encode(), digest.encode())
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        return hmac.compare_digest(gitlab.encode(errors="replace"), key)
    return False


def is_push(headers: Mapping[str, str]) -> bool:
    """A push or tag push by the forge's own event header; a ping or anything else is not."""
    for header, events in _PUSH_EVENTS.items():
        value = headers.get(header)
        if value is not None:
            return value.strip().lower() in events
    return False


class Webhooks:
    def __init__(self, *, runtime: Runtime, repos: Repos, watcher: Watcher) -> None:
        self._runtime = runtime
        self._repos = repos
        self._watcher = watcher

    async def receive(self, name: str, headers: Mapping[str, str], body: bytes) -> str:
        """CHECKING when a push starts a check, IGNORED for other events; AuthError for a
        missing or bad signature, NotFoundError for an unknown repository. `headers` have lower
        case names."""
        try:
            check_name(name)
        except ValueError:
            raise NotFoundError(f"no repository {name[:80]!r}") from None
        repo = await self._repos.get(name)
        try:
            secret = await self._runtime.io(self._repos.open_secret, repo)
        except SealError:
            raise AuthError(
                f"the webhook secret of repository {name!r} cannot be opened with this "
                "coordinator's secret key (was the key changed?); add the repository again"
            ) from None
        if secret is None:
            raise AuthError(f"repository {name!r} takes no webhooks (it has no webhook secret)")
        if not signature_valid(secret, headers, body):
            raise AuthError("the webhook's signature is missing or does not match")
        if not is_push(headers):
            return IGNORED
        self._watcher.wake(name)
        return CHECKING
