"""The coordinator's own git: `ls-remote` of watched repositories, and bare cache clones under
the data dir from which a commit's pipeline file, time, message and author are read.

Every call runs git as a subprocess with a timeout and no terminal (a repository that asks for a
password fails rather than waits); each blocks, so the domain runs them on its file threads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from coordinator.config import MAX_REF_NAME_BYTES
from coordinator.domain.errors import GitError
from coordinator.domain.repo_ports import CommitInfo
from coordinator.domain.repo_records import DEFAULT_HEAD

# Only what the watcher needs of the environment: no prompts, no user or system config that
# could point git at helpers, hooks or other transports.
_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    "LC_ALL": "C",
}
_KEPT = ("PATH", "HOME", "SSH_AUTH_SOCK")
# Most stderr a failed git command's error keeps (characters).
_MAX_ERROR_CHARS = 500
_PEELED = "^{}"
_SYMREF = "ref: "
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_WATCHED = ("refs/heads/", "refs/tags/")
_SEP = "\x00"


def _fits(sha: str, ref: str) -> bool:
    """A commit id (SHA-1 or SHA-256, hex) and a ref name without spaces or control characters,
    of a length a build's branch or tag may have."""
    return (
        _OBJECT_ID.fullmatch(sha) is not None
        and len(ref.encode(errors="replace")) <= len("refs/heads/") + MAX_REF_NAME_BYTES
        and not any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in ref)
    )


class GitCache:
    def __init__(self, root: Path, timeout_s: float) -> None:
        self._root = root
        self._timeout_s = timeout_s

    def _git(self, *args: str, cwd: Path | None = None) -> bytes:
        # HOME and the ssh agent stay the coordinator user's: ssh finds its keys there.
        kept = {name: os.environ[name] for name in _KEPT if name in os.environ}
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self._root), **kept, **_ENV}
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took more than {self._timeout_s:.0f} s") from None
        except OSError as error:
            raise GitError(f"cannot run git: {error.strerror}") from None
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
            detail = (fatal or lines or [f"exit status {done.returncode}"])[0]
            raise GitError(f"git {args[0]}: {detail[:_MAX_ERROR_CHARS]}")
        return done.stdout

    def heads(self, url: str) -> dict[str, str]:
        """Each branch and tag of `url` and the commit it names (an annotated tag's commit),
        and under "HEAD" the ref name of its default branch, when it says."""
        out = self._git("ls-remote", "--symref", "--", url).decode(errors="replace")
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if sha.startswith(_SYMREF) and ref == DEFAULT_HEAD:
                heads[DEFAULT_HEAD] = sha.removeprefix(_SYMREF)
            elif not ref.startswith(_WATCHED) or not _fits(sha, ref):
                continue  # a remote's answer is input like any other
            elif ref.endswith(_PEELED):
                heads[ref.removesuffix(_PEELED)] = sha  # the commit, not the tag object
            elif ref not in heads:
                heads[ref] = sha
        return heads

    def _clone(self, name: str) -> Path:
        path = self._root / f"{name}.git"
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "--bare", str(path))
        return path

    def fetch(self, name: str, url: str, commits: list[str]) -> set[str]:
        """Brings `commits` into the cache clone of `name` (made on first use); those of them
        that are commits (a tag may name a tree or a blob: nothing to build)."""
        path = self._clone(name)
        missing = [c for c in commits if not self._has(path, c)]
        if missing:
            self._git("fetch", "-q", "--no-tags", "--", url, *missing, cwd=path)
        return {c for c in commits if c not in missing or self._has(path, c)}

    def _has(self, path: Path, commit: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{commit}^{{commit}}", cwd=path)
        except GitError:
            return False
        return True

    def show(self, name: str, commit: str, path: str, max_bytes: int) -> bytes | None:
        """The file `path` as it is in `commit`; None when the commit has no such file. A file
        larger than `max_bytes` is GitError."""
        clone = self._clone(name)
        spec = f"{commit}:{path}"
        try:
            size = int(self._git("cat-file", "-s", spec, cwd=clone))
        except GitError:
            return None
        if size > max_bytes:
            raise GitError(f"{path} is too large ({size} > {max_bytes} bytes)")
        return self._git("cat-file", "blob", spec, cwd=clone)

    def commit_info(self, name: str, commit: str) -> CommitInfo:
        out = self._git(
            "log", "-1", "--no-show-signature", "--format=%ct%x00%an <%ae>%x00%s", commit,
            cwd=self._clone(name),
        )  # fmt: skip
        stamp, _, rest = out.decode(errors="replace").rstrip("\n").partition(_SEP)
        author, _, subject = rest.partition(_SEP)
        return CommitInfo(int(stamp) * 1000 if stamp.isdigit() else None, subject, author)

    def drop(self, name: str) -> None:
        """Forgets the cache clone of a removed repository."""
        shutil.rmtree(self._root / f"{name}.git", ignore_errors=True)
