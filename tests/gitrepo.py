"""Real git repositories on disk for tests of watched repositories: commit, tag, delete refs."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Author",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


@dataclass
class GitRepo:
    path: Path

    @classmethod
    def create(cls, path: Path, files: dict[str, str], branch: str = "main") -> GitRepo:
        path.mkdir(parents=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        repo.commit(files, "first")
        return repo

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            check=True,
            capture_output=True,
            env={**os.environ, **_IDENTITY},
        )
        return done.stdout.decode().strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        """Writes `files` and commits them on the current branch; the new commit's id."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def checkout(self, branch: str, *, new: bool = False) -> None:
        self.git("checkout", "-q", *(("-b",) if new else ()), branch)
