"""Which git sources read the agent's own host (refused unless --allow-local-git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.gitsource import GitError, fetch, is_local


@pytest.mark.parametrize(
    "url",
    ["/srv/repo", "repo", "./repo", "../a/b.git", "./odd:name", "file:///srv/repo", "FILE://x"],
)
def test_paths_and_file_urls_are_local(url: str) -> None:
    assert is_local(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/shop.git",
        "ssh://git@git.example.com/shop.git",
        "git://git.example.com/shop.git",
        "git@git.example.com:shop.git",
        "host:path/to/repo",
    ],
)
def test_remote_urls_are_not_local(url: str) -> None:
    assert not is_local(url)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(
        ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com",
         "commit", "-q", "--allow-empty", "-m", "one"],
        check=True,
    )  # fmt: skip
    return path


def test_a_local_repository_is_refused_by_default_naming_the_flag(
    repo: Path, tmp_path: Path
) -> None:
    for url in (str(repo), f"file://{repo}"):
        with pytest.raises(GitError, match="--allow-local-git"):
            fetch(url, "HEAD", tmp_path / "clone")
        assert not (tmp_path / "clone").exists()


def test_a_local_repository_is_fetched_when_allowed(repo: Path, tmp_path: Path) -> None:
    commit = fetch(f"file://{repo}", "HEAD", tmp_path / "clone", allow_local=True)
    assert len(commit) == 40
