"""`scripts/bench --quick` runs end to end and writes sane JSON, so the benchmark cannot rot."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def run_bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [str(BENCH), *args, "--quick", "--json", str(out)],
        capture_output=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"scenario" in result.stdout  # the table's header
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def figures_of(doc: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [f for f in doc["figures"] if f["scenario"] == scenario]


def assert_sane(figure: dict[str, Any]) -> None:
    assert math.isfinite(figure["value"]) and figure["value"] >= 0, figure
    assert figure["unit"], figure
    if figure["target"]:
        assert figure["ok"] in (True, False), figure
    if figure["limit"] is not None:
        assert figure["limit"] > 0 and figure["limit_name"], figure


def test_every_scenario_without_docker(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "--no-docker")
    assert doc["notes"]["scenarios"] == [
        "latency",
        "throughput",
        "logs",
        "scale",
        "growth",
        "followers",
        "deploys",
        "triggers",
        "cli",
    ]
    for scenario in doc["notes"]["scenarios"]:
        found = figures_of(doc, scenario)
        assert found, f"no figures for {scenario}"
        for figure in found:
            assert_sane(figure)
    rate = next(
        f for f in figures_of(doc, "scale") if f["name"].startswith("saturated: dispatches/s")
    )
    assert rate["value"] > 0
    streaming = next(f for f in figures_of(doc, "followers") if f["name"] == "followers streaming")
    assert streaming["value"] == 20  # every follower of the quick size got its stream


@pytest.mark.docker
def test_docker_figures_sit_beside_raw_docker(tmp_path: Path, docker_ready: None) -> None:
    doc = run_bench(tmp_path, "latency", "logs", "isolation")
    docker = [f for f in doc["figures"] if f["name"].startswith("docker:")]
    assert {f["scenario"] for f in docker} == {"latency", "logs"}
    for figure in docker:
        assert_sane(figure)
    assert any(f["limit_name"].startswith("docker run") for f in docker)
    networks = figures_of(doc, "isolation")
    assert [f["limit_name"] for f in networks] == ["--network bridge"] * 2
    for figure in networks:
        assert_sane(figure)
