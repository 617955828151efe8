"""`scripts/bench [SCENARIO ...] [--quick] [--no-docker] [--databases LIST] [--json FILE]`:
figures beside targets, SQLite's and (in a run of every scenario) PostgreSQL's."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

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
from benchkit.config import (
    FULL,
    POSTGRES_SCENARIOS,
    POSTGRES_SETTINGS,
    POSTGRES_TARGET_TOLERANCE,
    QUICK,
    Sizes,
)
from benchkit.figures import Figure, Report, within
from benchkit.scale import Scale
from tests import pgcluster

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
DATABASES = ("sqlite", "postgresql")
# `--postgres auto`: a private cluster under the run's temporary directory, gone at its end.
AUTO = "auto"


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
        "--databases",
        metavar="LIST",
        help="comma-separated, of sqlite and postgresql: the first runs every scenario, "
        f"postgresql second runs {', '.join(POSTGRES_SCENARIOS)} again (shell only) in a column "
        "of its own (default: sqlite,postgresql when no scenario is named, else sqlite; "
        "postgresql with --postgres)",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="the PostgreSQL server: 'auto' starts a private one for the run (the default), or "
        "postgresql://USER@HOST:PORT/DB of a user allowed to CREATE DATABASE; alone, it means "
        "--databases postgresql",
    )
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs and data")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.databases = _databases(parser, args)
    if args.scenarios:
        args.scenarios = [s for s in SCENARIOS if s in args.scenarios]
    else:
        skipped = (*(DOCKER_ONLY if args.no_docker else ()), *(NOT_QUICK if args.quick else ()))
        args.scenarios = [s for s in SCENARIOS if s not in skipped]
    if not set(args.scenarios) & set(POSTGRES_SCENARIOS):
        args.databases = args.databases[:1]  # no PostgreSQL pass to run: no cluster to start
    return args


def _databases(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """A run of every scenario is the one that reports against the targets: it puts
    PostgreSQL beside SQLite. A run of named scenarios looks at a few figures: SQLite's only,
    with no cluster to start, unless asked."""
    if args.databases is None:
        if args.postgres is not None:
            return ["postgresql"]
        return list(DATABASES) if not args.scenarios else ["sqlite"]
    names = [name.strip() for name in args.databases.split(",") if name.strip()]
    if not names or len(set(names)) != len(names) or not set(names) <= set(DATABASES):
        parser.error(f"--databases: a list of distinct names of {', '.join(DATABASES)}")
    return names


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


def tagged(figures: Sequence[Figure], database: str) -> list[Figure]:
    """The figures of one database's pass; PostgreSQL's verdicts allow the tolerance."""
    if database == "sqlite":
        return list(figures)
    factor = POSTGRES_TARGET_TOLERANCE
    return [replace(f, database=database, tolerance=factor, ok=within(f, factor)) for f in figures]


def run_passes(args: argparse.Namespace, docker: bool, root: Path, postgres: str) -> Report:
    """The first database runs every scenario asked for; a later one (PostgreSQL) the
    store-bound ones among them, with the shell executor only."""
    sizes = QUICK if args.quick else FULL
    report = Report()
    for index, database in enumerate(args.databases):
        names = args.scenarios
        if index > 0:
            names = [name for name in args.scenarios if name in POSTGRES_SCENARIOS]
        LOGGER.info("on %s: %s", database, " ".join(names) or "nothing")
        procs.POSTGRES_URL = postgres if database == "postgresql" else None
        passed = run_scenarios(names, sizes, docker and index == 0, root / database)
        report.extend(tagged(passed.figures, database))
        prefix = "" if index == 0 else f"{database}_"
        report.notes.update({prefix + key: value for key, value in passed.notes.items()})
        report.notes[f"{database}_scenarios"] = names
    return report


@contextlib.contextmanager
def postgres_server(args: argparse.Namespace, root: Path) -> Iterator[str]:
    """The admin URL the PostgreSQL pass creates its databases with; `auto` (the default)
    starts a private cluster under `root` and stops it however the run ends (with `--keep`,
    its directory stays, server log included)."""
    given, databases = args.postgres, args.databases
    if "postgresql" not in databases:
        yield ""
    elif given not in (None, AUTO):
        yield given
    else:
        cluster = pgcluster.start(POSTGRES_SETTINGS, parent=root)
        LOGGER.info("PostgreSQL: a private cluster on 127.0.0.1:%d", cluster.port)
        try:
            yield cluster.admin_url
        finally:
            cluster.stop(remove=not args.keep)


def _terminated(signum: int, _frame: FrameType | None) -> None:
    # Unwinds like Ctrl-C, so the processes, the cluster and the temporary data go too.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    signal.signal(signal.SIGTERM, _terminated)
    procs.PROFILE_DIR = args.profile
    docker = not args.no_docker and shutil.which("docker") is not None
    root = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    try:
        with postgres_server(args, root) as postgres:
            report = run_passes(args, docker, root, postgres)
    finally:
        if args.keep:
            LOGGER.info("processes' logs and data kept in %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    report.notes.update(quick=args.quick, docker=docker, scenarios=list(args.scenarios))
    report.notes["databases"] = list(args.databases)
    report.write_json(args.json)
    print(report.table())
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
