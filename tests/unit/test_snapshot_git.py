"""Source snapshots leave out what git leaves out: the snapshot of a real git work tree full of
tricky ignore rules holds exactly the files git lists, checked against git itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conveyor.cli.snapshot import make_snapshot


@pytest.fixture(autouse=True)
def _git_present() -> None:
    if shutil.which("git") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("git is missing (scripts/setup.sh installs it; under CI this test runs)")
        pytest.skip("needs git")


ROOT_RULES = "\n".join(
    [
        "# a comment",
        r"\#literal",
        r"\!bang",
        "trailing   ",
        r"kept\ ",
        "**/cache/",
        "a/**/b",
        "*.log",
        "!keep.log",
        "build/",
        "docs/internal.md",
        "*.[oa]",
        "!lib.a",
        "tmp[0-9]",
        "/rooted.txt",
        "out/**",
        "!out/wanted.txt",
        "",
    ]
)

FILES = [
    "#literal",
    "#other",
    "!bang",
    "bang",
    "trailing",
    "trailing ",
    "kept ",
    "kept",
    "cache/x.txt",
    "deep/er/cache/y.txt",
    "cache.txt",
    "a/b",
    "a/x/b",
    "a/x/y/b",
    "a/x/c",
    "x/a/b",
    "debug.log",
    "src/trace.log",
    "keep.log",
    "src/keep.log",
    "build/artifact.bin",
    "src/build/artifact.bin",
    "build.txt",
    "tools/build",
    "docs/internal.md",
    "docs/public.md",
    "sub/docs/internal.md",
    "main.o",
    "libx.a",
    "lib.a",
    "main.c",
    "tmp1",
    "tmpx",
    "tmp12",
    "rooted.txt",
    "src/rooted.txt",
    "out/junk.txt",
    "out/wanted.txt",
    "out/deeper/junk.txt",
    "nested/.gitignore",
    "nested/local.txt",
    "nested/debug.log",
    "nested/x.tmp",
    "nested/inner/x.tmp",
    "nested/inner/y.txt",
    "nested/only-here/z.txt",
    "other/local.txt",
    "other/x.tmp",
    "reinc/.gitignore",
    "reinc/secret.key",
    "reinc/public.key",
]

NESTED_RULES = "local.txt\n!debug.log\n*.tmp\n/only-here/\n"
REINCLUDE_RULES = "*.key\n!public.key\n"


def _git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "HOME": str(root.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    done = subprocess.run(
        ["git", "-c", "core.excludesFile=", "-c", "core.quotePath=false", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _git_files(root: Path, *args: str) -> set[str]:
    return set(filter(None, _git(root, "ls-files", "-z", *args).split("\0")))


def _make_tree(root: Path) -> None:
    root.mkdir()
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
    (root / ".gitignore").write_text(ROOT_RULES)
    (root / "nested" / ".gitignore").write_text(NESTED_RULES)
    (root / "reinc" / ".gitignore").write_text(REINCLUDE_RULES)
    _git(root, "init", "-q")


def _snapshot_files(root: Path) -> set[str]:
    snapshot = make_snapshot(root)
    try:
        with tarfile.open(snapshot.path) as archive:
            return {m.name for m in archive.getmembers() if not m.isdir()}
    finally:
        snapshot.path.unlink()


def test_snapshot_holds_what_git_lists_as_not_ignored(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _make_tree(root)
    expected = _git_files(root, "--others", "--exclude-standard")
    # Git itself keeps some files of each case and drops others, so both sides are checked.
    kept = {"#other", "bang", "kept", "keep.log", "lib.a", "out/wanted.txt", "tools/build"}
    kept |= {"nested/debug.log", "other/local.txt", "reinc/public.key", "a/x/c", "x/a/b"}
    dropped = {"#literal", "!bang", "trailing", "kept ", "a/x/y/b", "build/artifact.bin"}
    dropped |= {"src/build/artifact.bin", "nested/inner/x.tmp", "nested/only-here/z.txt"}
    dropped |= {"reinc/secret.key", "out/deeper/junk.txt", "tmp1", "rooted.txt", "cache/x.txt"}
    assert kept <= expected, kept - expected
    assert not dropped & expected, dropped & expected
    assert _snapshot_files(root) == expected


def test_tracked_files_follow_the_ignore_rules_too(tmp_path: Path) -> None:
    """The snapshot is of a directory, not of a commit: a tracked file that the rules ignore
    is left out as an untracked one is (a directory that is no work tree behaves the same)."""
    root = tmp_path / "tree"
    _make_tree(root)
    _git(root, "add", "main.c", "docs/public.md", "nested/.gitignore")
    _git(root, "add", "--force", "debug.log", "nested/local.txt")
    tracked = _git_files(root, "--cached")
    tracked_ignored = _git_files(root, "--cached", "--ignored", "--exclude-standard")
    assert tracked_ignored == {"debug.log", "nested/local.txt"}
    expected = (tracked | _git_files(root, "--others", "--exclude-standard")) - tracked_ignored
    assert _snapshot_files(root) == expected
