"""The build's commit: one rule for every path that needs it (checkout, commit statuses, deploys).

A build with a git source runs one commit. It is the commit its first checkout resolved (kept by
`set_commit`), or, before any checkout, the exact commit its ref already names (a watched
repository's builds and rollbacks are started for one). A branch or tag name is not a commit
until an agent resolves it: "" until then.
"""

from __future__ import annotations

import re

# Full object ids only (SHA-1 or SHA-256 repositories): an abbreviation or a name is resolved.
_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def build_commit(git_url: str | None, git_ref: str | None, git_commit: str | None) -> str:
    """The commit a build with this source runs ("" for no git source, or a ref not resolved)."""
    if not git_url:
        return ""
    if git_commit:
        return git_commit
    return git_ref if git_ref and _COMMIT_ID.fullmatch(git_ref) else ""
