"""`scripts/bench [SCENARIO ...] [--quick] [--no-docker] [--json FILE]`: figures beside targets."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchkit import (
    cli,
    deploys,
    followers,
    growth,
    isolation,
    latency,
    logs,
    peers,
    procs,
    scale,
    throughput,
    triggers,
)
from benchkit.config import FULL, QUICK, Sizes
from benchkit.figures import Report
from benchkit.scale import Scale

LOGGER = logging.getLogger("bench")
SCENARIOS = (
    "latency",
    "throughput",
    "logs",
    "scale",
    "growth",
    "followers",
    "deploys",
    "isolation",
    "triggers",
    "cli",
    "peers",
)
# Scenarios with nothing to measure without Docker: left out of the default set by --no-docker.
DOCKER_ONLY = ("isolation",)
# Left out of the default set by --quick: a smoke must not need the package index, and peers
# installs Buildbot from it on its first run (name it to run it at the quick sizes).
NOT_QUICK = ("peers",)
DEFAULT_JSON = Path("bench-results/bench.json")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure Conveyor beside the physical limit of this machine, in one run.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (a smoke test; peers only if named)"
    )
    parser.add_argument(
        "--no-docker", action="store_true", help="skip the Docker executor and raw Docker figures"
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, metavar="FILE", help="default: %(default)s"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample every coordinator with py-spy into DIR (collapsed stacks; needs py-spy)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run every coordinator on a fresh database of this PostgreSQL server "
        "(postgresql://USER@HOST:PORT/DB, a user allowed to CREATE DATABASE; default: SQLite)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs and data")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if args.scenarios:
        args.scenarios = [s for s in SCENARIOS if s in args.scenarios]
    else:
        skipped = (*(DOCKER_ONLY if args.no_docker else ()), *(NOT_QUICK if args.quick else ()))
        args.scenarios = [s for s in SCENARIOS if s not in skipped]
    return args


def run_scenarios(names: Sequence[str], sizes: Sizes, docker: bool, root: Path) -> Report:
    report = Report()
    scaled: dict[int, Scale] = {}
    for name in names:
        LOGGER.info("scenario %s ...", name)
        started = time.monotonic()
        if name == "latency":
            report.extend(latency.run(root / name, sizes, docker))
        elif name == "throughput":
            report.extend(throughput.run(root / name, sizes, docker))
        elif name == "logs":
            report.extend(logs.run(root / name, sizes, docker))
        elif name == "scale":
            figures, result = scale.run(root / name, sizes)
            scaled[result.agents] = result
            report.extend(figures)
        elif name == "growth":
            report.extend(growth.run(root / name, sizes, scaled))
        elif name == "followers":
            report.extend(followers.run(root / name, sizes))
        elif name == "deploys":
            report.extend(deploys.run(root / name, sizes))
        elif name == "triggers":
            report.extend(triggers.run(root / name, sizes))
        elif name == "cli":
            report.extend(cli.run(root / name, sizes))
        elif name == "peers":
            report.extend(peers.run(root / name, sizes))
        elif name == "isolation":
            report.extend(isolation.run(root / name, sizes, docker))
        seconds = round(time.monotonic() - started, 1)
        report.notes[f"{name}_seconds"] = seconds
        LOGGER.info("scenario %s took %.1f s", name, seconds)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    sizes = QUICK if args.quick else FULL
    procs.PROFILE_DIR = args.profile
    procs.POSTGRES_URL = args.postgres
    docker = not args.no_docker and shutil.which("docker") is not None
    root = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    try:
        report = run_scenarios(args.scenarios, sizes, docker, root)
    finally:
        if args.keep:
            LOGGER.info("processes' logs and data kept in %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report.notes.update(quick=args.quick, docker=docker, scenarios=list(args.scenarios))
    report.notes["database"] = "postgresql" if args.postgres else "sqlite"
    report.write_json(args.json)
    print(report.table())
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
