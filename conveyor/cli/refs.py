"""What a git source is, branch or tag, found before submitting (for `when:` conditions).

The CLI asks the repository with `git ls-remote` because the build's conditions are decided when
the coordinator creates it, before any agent has fetched anything. Where the repository cannot be
reached from here, the build is submitted without a branch or tag, and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Final

LS_REMOTE_TIMEOUT_S: Final = 60.0
"""A remote that does not answer in this long is left unresolved, not waited on forever."""

HEADS: Final = "refs/heads/"
TAGS: Final = "refs/tags/"


def branch_or_tag(url: str, ref: str) -> tuple[str, str]:
    """(branch, tag) that `ref` names in the repository at `url`; ("", "") for a commit, or
    when the repository cannot be asked (a warning on stderr then)."""
    try:
        listing = _ls_remote(url, ref)
    except (OSError, subprocess.SubprocessError) as error:
        print(f"conveyor: warning: cannot ask {url} what {ref} is ({error})", file=sys.stderr)
        return "", ""
    return parse_listing(listing, ref)


def parse_listing(listing: str, ref: str) -> tuple[str, str]:
    """Reads `git ls-remote --symref` output: a branch wins over a tag of the same name."""
    names: list[str] = []
    for line in listing.splitlines():
        left, _, right = line.partition("\t")
        if ref == "HEAD" and left.startswith("ref: ") and right == "HEAD":
            names.append(left.removeprefix("ref: "))
        elif right in (ref, HEADS + ref, TAGS + ref, f"{TAGS}{ref}^{{}}"):
            names.append(right.removesuffix("^{}"))
    for name in names:
        if name.startswith(HEADS):
            return name.removeprefix(HEADS), ""
    for name in names:
        if name.startswith(TAGS):
            return "", name.removeprefix(TAGS)
    return "", ""


def _ls_remote(url: str, ref: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    result = subprocess.run(
        ["git", "ls-remote", "--symref", "--", url, ref],
        capture_output=True,
        text=True,
        timeout=LS_REMOTE_TIMEOUT_S,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise subprocess.SubprocessError(lines[-1] if lines else f"exit {result.returncode}")
    return result.stdout
