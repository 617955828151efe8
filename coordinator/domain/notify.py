"""Wakes watchers of a build when its state or its logs change (asyncio, one event loop)."""

from __future__ import annotations

import asyncio
import contextlib


class BuildNotifier:
    def __init__(self) -> None:
        self._versions: dict[int, int] = {}
        self._events: dict[int, asyncio.Event] = {}

    def version(self, build_id: int) -> int:
        return self._versions.get(build_id, 0)

    def changed(self, build_id: int) -> None:
        self._versions[build_id] = self.version(build_id) + 1
        event = self._events.pop(build_id, None)
        if event is not None:
            event.set()

    async def wait(self, build_id: int, seen_version: int, timeout_s: float) -> None:
        """Returns once the build's version differs from `seen_version`, or after the timeout."""
        if self.version(build_id) != seen_version:
            return
        event = self._events.setdefault(build_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)
