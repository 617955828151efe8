"""The domain's threads: store calls on one thread, file calls beside it, commits not cut short."""

from __future__ import annotations

import asyncio
import threading

from coordinator.domain.runtime import Runtime, uncancellable


def thread_name(tag: str, *, suffix: str = "") -> str:
    return f"{tag}{suffix}:{threading.current_thread().name}"


def test_store_calls_share_one_thread_and_file_calls_run_elsewhere() -> None:
    async def main() -> None:
        runtime = Runtime(io_threads=2)
        names = {await runtime.db(thread_name, "db", suffix="!") for _ in range(5)}
        assert len(names) == 1 and names.pop().startswith("db!:store")
        assert (await runtime.io(thread_name, "io")).startswith("io:files")
        runtime.close()

    asyncio.run(main())


def test_uncancellable_work_runs_to_the_end_when_its_caller_is_cancelled() -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def commit_then_record() -> None:
            await asyncio.sleep(0.05)
            done.set()

        caller = asyncio.create_task(uncancellable(commit_then_record()))
        await asyncio.sleep(0.01)
        caller.cancel()
        await asyncio.wait_for(done.wait(), 1.0)
        assert caller.cancelled()

    asyncio.run(main())
