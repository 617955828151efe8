"""Source snapshots: ignore rules, kept modes, and a digest that depends on content only."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from conveyor.cli.ignore import ignored, parse_rules
from conveyor.cli.snapshot import make_snapshot


@pytest.mark.parametrize(
    ("path", "is_dir", "expected"),
    [
        ("a.log", False, True),
        ("x/a.log", False, True),
        ("keep.log", False, False),
        ("build", True, True),
        ("build", False, False),
        ("x/build", True, False),
        ("sub/secret.txt", False, True),
        ("x/sub/secret.txt", False, False),
        (".git", True, True),
    ],
)
def test_gitignore_rules(path: str, is_dir: bool, expected: bool) -> None:
    rules = [parse_rules("# comment\n\n*.log\n!keep.log\n/build/\nsub/secret.txt\n", "")]
    assert ignored(rules, path, is_dir) is expected


def test_nested_rules_apply_below_their_directory() -> None:
    rules = [parse_rules("*.tmp\n", "pkg")]
    assert ignored(rules, "pkg/a.tmp", False)
    assert not ignored(rules, "a.tmp", False)


def _tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.c").write_text("int a;\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "out.log").write_text("x\n")
    (root / "src" / ".gitignore").write_text("gen/\n")
    (root / "src" / "gen").mkdir()
    (root / "src" / "gen" / "big.o").write_text("o\n")
    (root / ".conveyorignore").write_text("*.log\n")
    (root / "link").symlink_to("src/a.c")


def test_snapshot_keeps_modes_and_links_and_drops_ignored(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root)
    snapshot = make_snapshot(root)
    try:
        with tarfile.open(snapshot.path) as archive:
            members = {m.name: m for m in archive.getmembers()}
    finally:
        snapshot.path.unlink()
    assert sorted(members) == [
        ".conveyorignore",
        "link",
        "run.sh",
        "src",
        "src/.gitignore",
        "src/a.c",
    ]
    assert members["run.sh"].mode & 0o111
    assert members["link"].issym() and members["link"].linkname == "src/a.c"
    assert {m.uid for m in members.values()} == {0}


def test_unchanged_tree_gives_the_same_digest(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _tree(root)
    first = make_snapshot(root)
    second = make_snapshot(root)
    first.path.unlink()
    second.path.unlink()
    assert first.sha256 == second.sha256
    (root / "src" / "a.c").write_text("int b;\n")
    os.utime(root / "src" / "a.c", (0, 0))
    third = make_snapshot(root)
    third.path.unlink()
    assert third.sha256 != first.sha256
