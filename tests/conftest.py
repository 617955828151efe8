"""Shared fixtures: Docker and PostgreSQL availability (failures, not skips, under CI), the
database each test gets, and real clusters.

Clusters' agents use the fake executor; the `docker_*` clusters (which need `docker_ready`)
run steps in containers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import docker
import pytest

from tests import pgcluster
from tests.databases import DATABASES, Databases
from tests.harness import Cluster
from tests.pgcluster import PostgresUnavailable

BASE_IMAGE = "conveyor/busybox"
# A fixture saying a test needs something of the machine, and the marker the test must carry.
NEEDS_MARKER = {"docker_ready": "docker", "postgres_binaries": "postgresql"}


def _docker_problem() -> str | None:
    try:
        client = docker.from_env()
        client.ping()
        client.images.get(BASE_IMAGE)
    except Exception as error:
        return f"Docker engine or image {BASE_IMAGE} unavailable: {error}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `db` the tests that run on the session's database backend (test.sh runs them
    twice): those with a database and the integration tests, except the ones marked
    `sqlite_only` or `any_store` (whose paths through the store are the same on both). Insists
    that a test that needs Docker or PostgreSQL's server binaries says so with its marker (so
    `-m "not docker"` works)."""
    for item in items:
        if any(item.get_closest_marker(name) for name in ("sqlite_only", "any_store")):
            continue
        if "database_url" in getattr(item, "fixturenames", ()) or "integration" in item.path.parts:
            item.add_marker(pytest.mark.db)
    for fixture, marker in NEEDS_MARKER.items():
        unmarked = [
            item.nodeid
            for item in items
            if fixture in getattr(item, "fixturenames", ()) and not item.get_closest_marker(marker)
        ]
        if unmarked:
            raise pytest.UsageError(
                f"tests need {fixture} but lack @pytest.mark.{marker}: {unmarked}"
            )
    _long_first(items)


def _long_first(items: list[pytest.Item]) -> None:
    """Starts the bench smoke first (its scenarios take up to a minute and a half each) and
    leaves the unit tests (a fraction of a second each) to the end: with several workers a run's
    end is then filled with quick tests, not a long one begun late on one worker while the
    others sit idle. Tests keep their order within each group, so a module's fixtures are set
    up once."""

    def rank(item: pytest.Item) -> int:
        if item.path.name == "test_bench_smoke.py":
            return 0
        return 2 if "unit" in item.path.parts else 1

    items.sort(key=rank)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    problem = _docker_problem()
    if problem is not None:
        _unavailable(problem, "Docker tests")


@pytest.fixture(scope="session")
def postgres_binaries() -> None:
    """PostgreSQL's server binaries, for a test that starts a private cluster of its own."""
    try:
        pgcluster.bin_dir()
    except PostgresUnavailable as error:
        _unavailable(str(error), "PostgreSQL tests")


def _unavailable(problem: str, tests: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (under CI the {tests} must run; see scripts/setup.sh)")
    pytest.skip(problem)


@pytest.fixture(scope="session", autouse=True)
def test_databases() -> Iterator[Databases]:
    """The backend CONVEYOR_TEST_DB names; PostgreSQL is started once for the whole session."""
    try:
        DATABASES.start()
    except PostgresUnavailable as error:
        _unavailable(str(error), "PostgreSQL tests")
    yield DATABASES
    DATABASES.close()


@pytest.fixture
def database_url(tmp_path: Path, test_databases: Databases) -> str:
    """A fresh, empty database of the session's backend for this test."""
    return test_databases.fresh_url(tmp_path / "db")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh coordinator with no agents; tests start the agents they need (fake executor)."""
    created = Cluster(tmp_path, executor="fake")
    created.start_server()
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def docker_cluster(tmp_path: Path, docker_ready: None) -> Iterator[Cluster]:
    """Like `cluster`, for tests that need their steps in containers: agents use Docker."""
    created = Cluster(tmp_path, executor="docker")
    created.start_server()
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def patient_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Leases of 12 s: agents ride out a coordinator restart or a short network cut."""
    created = Cluster(tmp_path / "patient", server_args=("--lease-ttl", "12"), executor="fake")
    created.root.mkdir()
    created.start_server()
    try:
        yield created
    finally:
        created.close()


def _shared(root: Path, executor: str) -> Cluster:
    created = Cluster(root, executor=executor)
    created.start_server()
    suffix = uuid.uuid4().hex[:6]
    created.start_agent(f"main-{suffix}", labels="os=linux", concurrency=2)
    created.start_agent(f"gpu-{suffix}", labels="gpu=yes")
    return created


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One coordinator and two fake-executor agents for a module's tests: `main` (os=linux,
    concurrency 2) and `gpu` (gpu=yes)."""
    created = _shared(tmp_path_factory.mktemp("cluster"), "fake")
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(scope="module")
def docker_shared_cluster(
    tmp_path_factory: pytest.TempPathFactory, docker_ready: None
) -> Iterator[Cluster]:
    """`shared_cluster` with Docker agents, for a module's tests that need containers."""
    created = _shared(tmp_path_factory.mktemp("docker-cluster"), "docker")
    try:
        yield created
    finally:
        created.close()
