"""The server process's lifecycle: it does not run on without its upkeep loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coordinator.config import CoordinatorConfig
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.loops import LoopDied
from coordinator.server import serve


def test_the_server_stops_when_an_upkeep_loop_dies_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def dies(self: Coordinator, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.2)
        raise LoopDied("lease reaper died 6 times within 60 s; stopping the coordinator")

    monkeypatch.setattr(Coordinator, "reap_forever", dies)
    config = CoordinatorConfig(
        data_dir=tmp_path / "server",
        agent_token="a",
        client_token="c",
        listen="127.0.0.1:0",
    )
    with pytest.raises(LoopDied, match="lease reaper died"):
        asyncio.run(asyncio.wait_for(serve(config), 20))
    assert (tmp_path / "server" / "server.addr").exists()
