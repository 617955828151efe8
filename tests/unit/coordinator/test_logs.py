"""Append-only step logs: exact bytes, resends without duplication, gaps refused."""

from __future__ import annotations

from pathlib import Path

from coordinator.storage.logs import LogStore


def read_all(store: LogStore, attempt_id: int = 1, step: int = 0) -> bytes:
    return store.read(attempt_id, step, 0, 1 << 20)


def test_append_at_zero(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs")
    assert store.append(1, 0, 0, b"hello\n") == (6, True)
    assert store.length(1, 0) == 6
    assert read_all(store) == b"hello\n"


def test_consecutive_chunks_concatenate(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    assert store.append(1, 0, 0, b"abc") == (3, True)
    assert store.append(1, 0, 3, b"def") == (6, True)
    assert read_all(store) == b"abcdef"


def test_resent_chunk_is_accepted_without_duplication(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(1, 0, 0, b"abc")
    store.append(1, 0, 3, b"def")
    assert store.append(1, 0, 3, b"def") == (6, True)
    assert store.append(1, 0, 0, b"abc") == (6, True)
    assert read_all(store) == b"abcdef"


def test_overlapping_chunk_appends_only_the_new_tail(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(1, 0, 0, b"abcd")
    assert store.append(1, 0, 2, b"cdEFG") == (7, True)
    assert read_all(store) == b"abcdEFG"


def test_gap_is_refused_and_reports_the_held_length(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(1, 0, 0, b"abc")
    assert store.append(1, 0, 5, b"xyz") == (3, False)
    assert read_all(store) == b"abc"
    # The agent resends from the reported length and the log continues exactly.
    assert store.append(1, 0, 3, b"dexyz") == (8, True)
    assert read_all(store) == b"abcdexyz"


def test_gap_on_an_empty_log_is_refused(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    assert store.append(1, 0, 1, b"x") == (0, False)
    assert store.length(1, 0) == 0
    assert read_all(store) == b""


def test_every_byte_value_round_trips(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    data = bytes(range(256)) + b"\xff\xfe\x00\r\n\r" + bytes(reversed(range(256)))
    half = len(data) // 2
    store.append(1, 0, 0, data[:half])
    store.append(1, 0, half, data[half:])
    assert store.length(1, 0) == len(data)
    assert read_all(store) == data
    assert store.path(1, 0).read_bytes() == data


def test_read_with_offset_and_limit(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(1, 0, 0, b"0123456789")
    assert store.read(1, 0, 3, 4) == b"3456"
    assert store.read(1, 0, 8, 100) == b"89"
    assert store.read(1, 0, 10, 100) == b""


def test_steps_and_attempts_are_separate_logs(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(1, 0, 0, b"one")
    store.append(1, 1, 0, b"two!")
    store.append(2, 0, 0, b"three")
    assert (read_all(store, 1, 0), read_all(store, 1, 1), read_all(store, 2, 0)) == (
        b"one",
        b"two!",
        b"three",
    )


def test_missing_log_has_length_zero_and_reads_empty(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    assert store.length(42, 3) == 0
    assert store.read(42, 3, 0, 100) == b""


def test_log_survives_a_new_store_on_the_same_root(tmp_path: Path) -> None:
    LogStore(tmp_path).append(1, 0, 0, b"kept")
    reopened = LogStore(tmp_path)
    assert reopened.length(1, 0) == 4
    assert reopened.append(1, 0, 0, b"kept") == (4, True)
    assert read_all(reopened) == b"kept"
