"""A real full disk for the tests: a size-limited tmpfs (mounting needs root, as CI runs)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_filesystem(where: Path, size: str, mode: str | None = None) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "2m") mounted at `where` (its root directory of `mode`, e.g.
    "0700", if given), unmounted after. Without root it skips, and under CI it fails: there
    these tests must run."""
    if os.geteuid() != 0:
        problem = "mounting a small tmpfs as a full disk needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (under CI these tests must run)")
        pytest.skip(problem)
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (f",mode={mode}" if mode else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        # Lazily: a process the test could not stop must not leave the mount behind.
        subprocess.run(["umount", "-l", str(where)], check=False)
