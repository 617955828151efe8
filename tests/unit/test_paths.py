"""Artifact names, globs, symlink resolution and download destinations (DESIGN §7.8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.paths import (
    UnsafePathError,
    check_name,
    format_size,
    glob_match,
    parse_size,
    resolve_link,
    safe_destination,
)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x", "path escapes the workspace"),
        ("a/../../x", "path escapes the workspace"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("a//b", "not a normalised path"),
        ("./a", "not a normalised path"),
        ("", "not a valid file name"),
        ("a\0b", "not a valid file name"),
        ("a\\..\\b", "backslashes are not allowed"),
    ],
)
def test_unsafe_names_are_refused_with_their_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafePathError, match=reason):
        check_name(name)


def test_plain_names_pass() -> None:
    assert check_name("dist/app.tar.gz") == "dist/app.tar.gz"
    assert check_name("..hidden/x..y") == "..hidden/x..y"


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("dist/**", "dist/a/b.txt", True),
        ("dist", "dist/a/b.txt", True),
        ("**/*.o", "x/y/z.o", True),
        ("**/*.o", "z.o", True),
        ("*.txt", "a.txt", True),
        ("*.txt", "d/a.txt", False),
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/b/x/c", False),
        ("a/**/c", "a/c", True),
        ("a?.bin", "ab.bin", True),
        ("[ab].bin", "c.bin", False),
    ],
)
def test_globs(pattern: str, name: str, matches: bool) -> None:
    assert glob_match(pattern, name) is matches


@pytest.mark.parametrize(
    ("link", "target", "resolved"),
    [("l", "x", "x"), ("a/l", "../b", "b"), ("a/l", "/workspace/c/d", "c/d"), ("l", "./y/", "y")],
)
def test_links_inside_the_workspace_resolve(link: str, target: str, resolved: str) -> None:
    assert resolve_link(link, target) == resolved


@pytest.mark.parametrize("target", ["/etc/passwd", "../x", "a/../../x", "/workspace2/x"])
def test_links_leaving_the_workspace_are_refused(target: str) -> None:
    with pytest.raises(UnsafePathError, match="symlink points outside the workspace"):
        resolve_link("l", target)


def test_destination_stays_under_the_root(tmp_path: Path) -> None:
    assert safe_destination(tmp_path, "a/b.txt") == tmp_path.resolve() / "a" / "b.txt"


def test_planted_symlink_in_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "job").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="escapes the download directory"):
        safe_destination(root, "job/x")
    (root / "file").symlink_to(outside / "f")
    with pytest.raises(UnsafePathError, match="a symlink is in the way"):
        safe_destination(root, "file")


def test_sizes() -> None:
    assert parse_size("512") == 512
    assert parse_size("64KiB") == 64 * 1024
    assert parse_size("10MiB") == 10 * 1024**2
    assert parse_size("1.5G") == 3 * 1024**3 // 2
    assert format_size(3 * 1024**2) == "3.0 MiB"
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("ten megs")
