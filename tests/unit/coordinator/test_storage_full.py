"""A full or failing disk: the store and the files raise StorageExhaustedError, record nothing,
and the edge answers RESOURCE_EXHAUSTED (which agents retry)."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any, NoReturn, cast

import grpc
import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from conveyor.pipeline import load_pipeline
from coordinator.domain.errors import StorageExhaustedError
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.edge.errors import Context, status_for, unary
from coordinator.storage.blobs import BlobStore
from coordinator.storage.logs import LogStore
from coordinator.store import Store
from coordinator.store.base import exhausted

PIPELINE = "name: big\nimage: conveyor/busybox\njobs:\n  a:\n    steps:\n      - run: 'true'\n"


def submit(store: Store, padding: str = "") -> int:
    pipeline = load_pipeline(PIPELINE, "pipeline.yml")
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=PIPELINE + padding,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
    )


def test_a_full_sqlite_database_raises_storage_exhausted_and_records_nothing(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'conveyor.db'}")
    first = submit(store)
    # SQLite's own limit on the file's pages: past it every write fails with SQLITE_FULL,
    # "database or disk is full", exactly as on a full disk.
    pages = store.engine.connect().exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    event.listen(store.engine, "connect", cap)
    store.engine.dispose()
    with pytest.raises(StorageExhaustedError, match="database or disk is full"):
        submit(store, "#" * 200_000)
    assert [b.id for b in store.builds.list(100)] == [first]
    store.close()


def test_postgres_disk_full_is_storage_exhausted() -> None:
    full = OperationalError("INSERT ...", {}, psycopg.errors.DiskFull("could not extend file"))
    assert exhausted(full)
    other = OperationalError("SELECT ...", {}, psycopg.errors.QueryCanceled("canceled"))
    assert not exhausted(other)


def test_a_log_append_on_a_full_disk_keeps_what_was_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LogStore(tmp_path / "logs")
    assert store.append(1, 0, 0, b"acknowledged\n") == (13, True)
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        written = real_write(fd, bytes(data[:3]))
        monkeypatch.setattr(os, "write", full)
        return written

    def full(fd: int, data: Any) -> NoReturn:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StorageExhaustedError, match="No space left on device"):
        store.append(1, 0, 13, b"lost chunk\n")
    # Nothing half-recorded: the 3 bytes written before the disk filled are gone.
    assert store.length(1, 0) == 13
    monkeypatch.setattr(os, "write", real_write)
    assert store.append(1, 0, 13, b"lost chunk\n") == (24, True)
    assert store.read(1, 0, 0, 100) == b"acknowledged\nlost chunk\n"


def test_a_blob_write_on_a_full_disk_is_storage_exhausted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming = BlobStore(tmp_path / "blobs").begin()

    def full(*_args: object) -> NoReturn:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(incoming, "_file", type("Full", (), {"write": full})())
    with pytest.raises(StorageExhaustedError):
        incoming.write(b"data")


def test_another_os_error_stays_what_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LogStore(tmp_path / "logs")

    def denied(fd: int, data: Any) -> NoReturn:
        raise OSError(errno.EBADF, "bad file descriptor")

    monkeypatch.setattr(os, "write", denied)
    with pytest.raises(OSError) as caught:
        store.append(1, 0, 0, b"x")
    assert not isinstance(caught.value, StorageExhaustedError)


class AbortCalled(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        self.code, self.details = code, details
        raise AbortCalled


def test_the_edge_answers_resource_exhausted_for_a_full_store() -> None:
    assert status_for(StorageExhaustedError("full")) is grpc.StatusCode.RESOURCE_EXHAUSTED

    class Service:
        @unary
        async def AppendLog(self, request: object, context: Context) -> object:
            raise StorageExhaustedError("cannot write 0.log: No space left on device")

    context = FakeContext()

    async def call() -> None:
        await Service().AppendLog(object(), cast(Context, context))

    with pytest.raises(AbortCalled):
        asyncio.run(call())
    assert context.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "No space left on device" in context.details
