"""When the agent's work dir counts as full, and when it has room again."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.workroom import WorkDirRoom

MIB = 1024 * 1024


class _Disk:
    """A file system of `size` bytes with `free` free, as statvfs reports it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, size: int, free: int) -> None:
        self.size, self.free = size, free
        monkeypatch.setattr(os, "statvfs", self._statvfs)

    def _statvfs(self, path: object) -> SimpleNamespace:
        return SimpleNamespace(f_blocks=self.size, f_bavail=self.free, f_frsize=1)


def test_a_disk_with_little_room_takes_no_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = _Disk(monkeypatch, size=100 * 1024 * MIB, free=10 * MIB)
    room = WorkDirRoom(tmp_path)
    problem = room.problem()
    assert problem is not None and problem.startswith(f"disk full: {tmp_path}")
    disk.free = 100 * MIB
    assert room.problem() is None


def test_after_a_spool_ran_out_the_same_room_is_not_enough(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = _Disk(monkeypatch, size=2 * MIB, free=600 * 1024)
    room = WorkDirRoom(tmp_path)
    assert room.problem() is None  # a small disk needs only a small part of it free
    room.ran_out(600 * 1024)
    assert room.changed.is_set()
    assert room.problem() is not None  # the spool's space came back, but that was too little
    disk.free = 2 * MIB - 10 * 1024  # someone made room
    assert room.problem() is None
    disk.free = 600 * 1024
    assert room.problem() is None  # forgotten once room was made


def test_one_huge_log_does_not_hold_the_agent_forever(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    disk = _Disk(monkeypatch, size=1024 * MIB, free=0)
    room = WorkDirRoom(tmp_path)
    room.ran_out(1000 * MIB)
    disk.free = 1000 * MIB  # the whole disk free again after the spool went
    assert room.problem() is None
