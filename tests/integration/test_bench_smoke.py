"""`scripts/bench --quick` runs end to end and writes sane JSON, so the benchmark cannot rot."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def run_bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    doc, _ = run_bench_table(tmp_path, *args)
    return doc


def run_bench_table(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """The JSON and the table the bench printed."""
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
    return doc, result.stdout.decode()


def figures_of(doc: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [f for f in doc["figures"] if f["scenario"] == scenario]


def assert_sane(figure: dict[str, Any]) -> None:
    assert math.isfinite(figure["value"]) and figure["value"] >= 0, figure
    assert figure["unit"], figure
    if figure["target"]:
        assert figure["ok"] in (True, False), figure
    if figure["limit"] is not None:
        assert figure["limit"] > 0 and figure["limit_name"], figure


# The default scenarios of `--quick --no-docker`, in runs of their own, so the test workers share
# them out instead of one worker running them all in a row. `growth` runs after `scale`, as in
# the full run: it reuses the scale figures of the agent counts they share.
QUICK_RUNS = [
    ("latency",),
    ("throughput",),
    ("logs",),
    ("scale", "growth"),
    ("followers",),
    ("deploys",),
    ("triggers",),
    ("cli",),
]


def parsed(*args: str, field: str = "scenarios") -> list[str]:
    """What the bench's command line makes of these arguments (a list-valued field)."""
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from benchkit.__main__ import parse; "
            f"print(' '.join(parse(sys.argv[1:]).{field}))",
            *args,
        ],
        env={**os.environ, "PYTHONPATH": str(BENCH.parent)},
        capture_output=True,
        timeout=60,
        check=True,
    )
    return shown.stdout.decode().split()


def test_the_quick_smoke_runs_these_scenarios() -> None:
    """`scripts/bench --quick --no-docker` picks exactly the scenarios tested run by run below."""
    assert parsed("--quick", "--no-docker") == [name for run in QUICK_RUNS for name in run]


def test_a_run_of_every_scenario_puts_postgresql_beside_sqlite() -> None:
    both = ["sqlite", "postgresql"]
    assert parsed("--quick", field="databases") == both
    assert parsed("latency", field="databases") == ["sqlite"]
    assert parsed("latency", "--databases", "sqlite,postgresql", field="databases") == both
    # The flag of old: every coordinator on the given server instead of SQLite.
    assert parsed("--postgres", "postgresql://u@h:1/d", field="databases") == ["postgresql"]


@pytest.mark.parametrize("scenarios", QUICK_RUNS, ids="+".join)
def test_each_scenario_without_docker(tmp_path: Path, scenarios: tuple[str, ...]) -> None:
    doc = run_bench(tmp_path, *scenarios, "--no-docker")
    assert doc["notes"]["scenarios"] == list(scenarios)
    for scenario in scenarios:
        found = figures_of(doc, scenario)
        assert found, f"no figures for {scenario}"
        for figure in found:
            assert_sane(figure)
    if "scale" in scenarios:
        scale = figures_of(doc, "scale")
        rate = next(f for f in scale if f["name"].startswith("saturated: dispatches/s"))
        assert rate["value"] > 0
    if "throughput" in scenarios:
        throughput = {f["name"]: f for f in figures_of(doc, "throughput")}
        # The coordinator's CPU per job sits beside what bare gRPC spends on the same calls.
        floor = throughput["shell: coordinator CPU per job"]
        assert floor["limit_name"].startswith("bare gRPC:") and floor["limit"] > 0, floor
        assert throughput["bare grpc.aio server: CPU per unary call"]["value"] > 0
    if "followers" in scenarios:
        followers = figures_of(doc, "followers")
        streaming = next(f for f in followers if f["name"] == "followers streaming")
        assert streaming["value"] == 20  # every follower of the quick size got its stream
        # And then followed a step printing 1 MB/s: bytes reached them, no stream failed.
        printing = [f for f in followers if "of a 1 MB/s step" in f["name"]]
        by_kind = {f["name"].split(" ")[0]: f for f in printing}
        assert by_kind["coordinator"]["unit"] == "% of a core"
        assert by_kind["log"]["value"] > 0
        assert by_kind["follower"]["value"] == 0
        # Beside the coordinator's share: the kernel's for sending the same bytes, measured.
        assert by_kind["coordinator"]["limit"] > 0
        assert by_kind["coordinator"]["limit_name"].endswith("over loopback TCP alone")
    if "cli" in scenarios:
        run = next(f for f in figures_of(doc, "cli") if f["name"].startswith("conveyor run"))
        assert run["limit_name"] == "python -c 'import grpc'" and run["limit"] > 0


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


def test_the_cli_is_timed_with_bytecode_as_users_have_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench started with PYTHONDONTWRITEBYTECODE would otherwise time the CLI compiling
    every module of its own on every run, which no installed command does."""
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from benchkit.cli import timed

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    # Exits 1, and timed() raises, if the timed process would not write bytecode.
    wall, cpu = timed([sys.executable, "-c", "import sys; sys.exit(sys.flags.dont_write_bytecode)"])
    assert wall > 0 and cpu >= 0


# The scenarios the PostgreSQL pass runs again (scripts/benchkit/config.py POSTGRES_SCENARIOS).
POSTGRES_RUN = ("latency", "throughput", "scale", "deploys")


@pytest.mark.postgresql
def test_postgresql_figures_sit_beside_sqlite(tmp_path: Path, postgres_binaries: None) -> None:
    """Both passes on the private cluster the bench starts itself, in one table."""
    doc, table = run_bench_table(
        tmp_path, *POSTGRES_RUN, "--no-docker", "--databases", "sqlite,postgresql"
    )
    assert doc["notes"]["databases"] == ["sqlite", "postgresql"]
    assert doc["notes"]["postgresql_scenarios"] == list(POSTGRES_RUN)
    header = table.splitlines()[0].split()
    assert header[2] == "sqlite" and header[-3:] == ["postgresql", "within", "2x"]
    for scenario in POSTGRES_RUN:
        found = figures_of(doc, scenario)
        by_database = {
            db: [f for f in found if f["database"] == db] for db in ("sqlite", "postgresql")
        }
        assert by_database["postgresql"], f"no PostgreSQL figures for {scenario}"
        names = [f["name"] for f in by_database["sqlite"]]
        assert [f["name"] for f in by_database["postgresql"]] == names
        for figure in by_database["postgresql"]:
            assert_sane(figure)
            assert figure["tolerance"] == 2.0
