"""What a commit-status target sends for an event: the forge's statuses API, Gitea's and
GitHub's shape (`POST {base}/repos/{owner}/{repo}/statuses/{sha}`)."""

from __future__ import annotations

import json
from urllib.parse import quote

from coordinator.domain.notify_records import NotifyEvent
from coordinator.domain.records import BuildRecord
from coordinator.policy.notify import commit_state

# Forges cap a status's description (GitHub: 140 characters).
MAX_DESCRIPTION_CHARS = 140


def status_url(base: str, repo: str, commit: str) -> str:
    owner, name = repo.split("/", 1)
    path = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}/statuses/{commit}"
    return base.rstrip("/") + path


def commit_status_body(
    build: BuildRecord, event: NotifyEvent, gate: str | None, link: str
) -> bytes | None:
    """The status a build's event sets on its commit; None for an event that sets none."""
    if event is NotifyEvent.DEPLOYMENT:
        return None
    state = commit_state(build.status, at_gate=event is NotifyEvent.GATE)
    if state is None:
        return None
    if event is NotifyEvent.GATE:
        description = f"build {build.id} waits for approval at {gate}"
    else:
        description = f"build {build.id} {build.status.value}"
    body = {
        "state": state,
        "target_url": f"{link.rstrip('/')}/builds/{build.id}" if link else "",
        "description": description[:MAX_DESCRIPTION_CHARS],
        "context": f"conveyor/{build.name}",
    }
    return json.dumps(body, separators=(",", ":")).encode()
