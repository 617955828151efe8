"""A database damaged while the coordinator runs: every read says so, naming the file.

The damage is real: bytes of the jobs table's pages overwritten on disk behind the store, with
the header's change counter bumped as any other writer would, so SQLite reads them again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.domain.errors import DataLossError
from coordinator.store import Store
from tests.sqlite_damage import damage_table
from tests.unit.coordinator.test_store import SINGLE, submit


def test_a_database_damaged_at_runtime_is_data_loss_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.db"
    store = Store(f"sqlite:///{path}")
    try:
        build_id = submit(store, SINGLE)
        store.engine.dispose()  # no pooled connection keeps the old pages cached
        damage_table(path, "jobs")
        with pytest.raises(DataLossError) as raised:
            store.builds.get(build_id)
        message = str(raised.value)
        assert str(path) in message
        assert "damaged" in message and "restore the database from a backup" in message
        assert "\n" not in message
    finally:
        store.close()
