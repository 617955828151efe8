"""Where blocking work runs: one thread for the store, a few for files, a few for git; the domain
runs on the loop.

The single store thread also serialises writers, so SQLite never sees lock contention.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from coordinator.config import LOG_IO_THREADS, REPO_CHECKS_AT_ONCE

P = ParamSpec("P")
T = TypeVar("T")


class Runtime:
    def __init__(self, io_threads: int = LOG_IO_THREADS) -> None:
        self._db = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._io = ThreadPoolExecutor(io_threads, thread_name_prefix="files")
        # git may take its whole timeout on a slow remote: threads of its own, so checks of
        # watched repositories never hold up log writes on the file threads.
        self._git = ThreadPoolExecutor(REPO_CHECKS_AT_ONCE, thread_name_prefix="git")

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` on the store thread: store calls, and blob commits beside their rows."""
        return await self._run(self._db, functools.partial(fn, *args, **kwargs))

    async def io(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` on a file thread: log appends and reads, blob bytes, parsing large input."""
        return await self._run(self._io, functools.partial(fn, *args, **kwargs))

    async def git(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `fn` on a git thread: `git` commands of the repository watcher."""
        return await self._run(self._git, functools.partial(fn, *args, **kwargs))

    @staticmethod
    async def _run(executor: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def close(self) -> None:
        """Waits for the work already handed over, then stops the threads."""
        self._db.shutdown(wait=True)
        self._io.shutdown(wait=True)
        self._git.shutdown(wait=True)


async def uncancellable(work: Coroutine[object, object, T]) -> T:
    """Runs a commit and the in-memory bookkeeping after it to the end, even if the request that
    asked for it is cancelled meanwhile: a committed claim without its lease would never expire."""
    return await asyncio.shield(asyncio.ensure_future(work))
