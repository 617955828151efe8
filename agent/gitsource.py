"""Git sources: clone on the agent host, resolve the ref to a commit, stream `git archive`.

Steps run in arbitrary images (busybox has no git), so the checkout happens on the agent host in
a temp dir and reaches the workspace as a tar of exactly that commit's tree (modes and symlinks
kept; `.git` is not included).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from agent.config import GIT_TIMEOUT_S, TRANSFER_CHUNK_BYTES

LOGGER = logging.getLogger(__name__)

# Never run a transport that executes commands (ext::) and never prompt for credentials.
_GIT = ["git", "-c", "protocol.ext.allow=never", "-c", "core.askPass=true"]
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"}
_COMMIT_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class GitError(Exception):
    """The repository or ref could not be fetched; the message says which and why."""


def is_local(url: str) -> bool:
    """Whether git would read `url` from this host's file system: a `file:` URL or a path.

    As git tells them apart: a URL has `://`; without one, a colon before the first slash
    makes it scp-like ssh (`host:path`); anything else is a path."""
    if url.lower().startswith("file:"):
        return True
    if "://" in url:
        return False
    colon, slash = url.find(":"), url.find("/")
    return colon < 0 or 0 <= slash < colon


def _run(args: list[str], what: str, *, allow_local: bool = True) -> str:
    # A backstop behind the caller's is_local check: git itself refuses every local transport.
    local = [] if allow_local else ["-c", "protocol.file.allow=never"]
    try:
        result = subprocess.run(
            [*_GIT, *local, *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=_GIT_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"{what}: no answer within {GIT_TIMEOUT_S:g} s") from None
    except OSError as error:
        raise GitError(f"{what}: cannot run git ({error})") from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no detail"])[-1]
        raise GitError(f"{what}: {detail}")
    return result.stdout.strip()


def fetch(url: str, ref: str, into: Path, *, allow_local: bool = False) -> str:
    """Clones `url` (bare) into `into` and returns the commit id `ref` names there; a
    repository on this host (`is_local`) only with `allow_local`."""
    if not allow_local and is_local(url):
        raise GitError(
            f"git source {url} is a path on the agent's host: this agent refuses local "
            "repositories unless it runs with --allow-local-git"
        )
    _run(
        ["clone", "--bare", "--quiet", "--", url, str(into)],
        f"git clone of {url} failed",
        allow_local=allow_local,
    )
    if ref.startswith("-"):
        raise GitError(f"invalid ref {ref!r}")
    try:
        commit = _run(
            ["-C", str(into), "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"],
            f"ref {ref!r} not found in {url}",
        )
    except GitError:
        raise GitError(f"ref {ref!r} not found in {url}") from None
    if not _COMMIT_RE.fullmatch(commit):
        raise GitError(f"ref {ref!r} in {url} resolved to {commit!r}, not a commit")
    LOGGER.info("git source %s %s is commit %s", url, ref, commit)
    return commit


def commit_time_ms(repo: Path, commit: str) -> int:
    """The commit's committer time in ms (lead time for changes is measured from it)."""
    stamp = _run(["-C", str(repo), "show", "-s", "--format=%ct", commit], f"git show of {commit}")
    try:
        return int(stamp) * 1000
    except ValueError:
        raise GitError(f"git show of {commit}: no commit time in {stamp[:80]!r}") from None


def archive(repo: Path, commit: str) -> Iterator[bytes]:
    """The commit's tree as a tar stream, in chunks; raises GitError if git fails."""
    command = [*_GIT, "-C", str(repo), "archive", "--format=tar", commit]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_GIT_ENV
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        while data := process.stdout.read(TRANSFER_CHUNK_BYTES):
            yield data
        error = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise GitError(f"git archive of {commit} failed: {error or 'no detail'}")
