"""Artifact paths (DESIGN §7.8): names that stay inside their root, glob matching, byte sizes.

Shared by the agent (collecting), the coordinator (storing) and the CLI (downloading), so the
three checks agree on what a safe name is.
"""

from __future__ import annotations

import fnmatch
import os
import re
from functools import lru_cache
from pathlib import Path

# Longest artifact name accepted, in bytes of UTF-8; a tar PAX header handles longer, but such a
# name is a sign of a runaway glob rather than a real file.
MAX_NAME_BYTES = 1024

_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class UnsafePathError(ValueError):
    """A path that would leave its root, or is not a plain relative name."""


def check_name(name: str, what: str = "artifact") -> str:
    """`name` if it is a normalised relative path inside its root; raises UnsafePathError."""
    if not name or "\0" in name or len(name.encode()) > MAX_NAME_BYTES:
        raise UnsafePathError(f"{what} {name!r}: not a valid file name")
    if name.startswith("/"):
        raise UnsafePathError(f"{what} {name!r}: absolute paths are not allowed")
    if "\\" in name:
        raise UnsafePathError(f"{what} {name!r}: backslashes are not allowed")
    parts = name.split("/")
    if ".." in parts:
        raise UnsafePathError(f"{what} {name!r}: path escapes the workspace")
    if any(part in ("", ".") for part in parts):
        raise UnsafePathError(f"{what} {name!r}: not a normalised path")
    return name


def resolve_link(link_name: str, target: str, root: str = "/workspace") -> str:
    """The workspace-relative path a symlink at `link_name` points to; raises if it leaves."""
    base = root.rstrip("/")
    if target.startswith("/"):
        if not target.startswith(base + "/"):
            raise UnsafePathError(f"artifact {link_name!r}: symlink points outside the workspace")
        joined = target[len(base) + 1 :]
    else:
        joined = "/".join([*link_name.split("/")[:-1], target])
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePathError(
                    f"artifact {link_name!r}: symlink points outside the workspace"
                )
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise UnsafePathError(f"artifact {link_name!r}: symlink points to the workspace itself")
    return "/".join(parts)


def safe_destination(root: Path, name: str) -> Path:
    """Where `name` goes under `root`, refusing anything (symlinks included) that leaves it."""
    check_name(name)
    real_root = Path(os.path.realpath(root))
    target = real_root.joinpath(*name.split("/"))
    # realpath follows symlinks already present under root (e.g. a planted root/x -> /etc).
    real_parent = Path(os.path.realpath(target.parent))
    if real_parent != real_root and real_root not in real_parent.parents:
        raise UnsafePathError(f"artifact {name!r}: path escapes the download directory")
    if target.is_symlink():
        raise UnsafePathError(
            f"artifact {name!r}: a symlink is in the way in the download directory"
        )
    return real_parent / target.name


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """`**` spans any number of directories, `*` and `?` stay within one name."""
    pieces = []
    for index, part in enumerate(pattern.strip("/").split("/")):
        if part == "**":
            pieces.append("(?:[^/]+/)*" if index == 0 else "(?:/[^/]+)*")
            continue
        translated = fnmatch.translate(part).removeprefix("(?s:").removesuffix(")\\Z")
        translated = translated.replace(".*", "[^/]*").replace("(?s:.)", "[^/]")
        sep = "" if index == 0 or pieces[-1].endswith("/)*") else "/"
        pieces.append(sep + translated)
    return re.compile("".join(pieces) + r"\Z", re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    """Whether `name` (a file) matches `pattern` or lies under a directory that does."""
    regex = glob_regex(pattern)
    parts = name.split("/")
    return any(regex.match("/".join(parts[:depth])) for depth in range(len(parts), 0, -1))


def parse_size(text: str) -> int:
    """Bytes in `text`: `512`, `10MiB`, `1.5G`, `200MB` (binary units throughout)."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid size {text!r} (expected e.g. 512, 64KiB, 10MiB, 2GiB)")
    unit = match.group(2).upper().rstrip("B").rstrip("I")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
