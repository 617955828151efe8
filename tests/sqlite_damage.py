"""Real damage to a SQLite file behind its users' backs, for the tests of what they then say."""

from __future__ import annotations

import sqlite3
from pathlib import Path

CHANGE_COUNTER_OFFSET = 24  # bytes 24..27 of a SQLite file's header


def damage_table(path: Path, table: str) -> None:
    """Overwrites every page of `table` (not page 1, the schema) with garbage."""
    with sqlite3.connect(path) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()[0]
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert root > 1
    with path.open("r+b") as raw:
        raw.seek((root - 1) * page_size)
        raw.write(b"\xa5" * page_size)
        raw.seek(CHANGE_COUNTER_OFFSET)
        counter = int.from_bytes(raw.read(4), "big")
        raw.seek(CHANGE_COUNTER_OFFSET)
        raw.write((counter + 1).to_bytes(4, "big"))
