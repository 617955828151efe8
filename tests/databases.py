"""The database the tests run on: a SQLite file per test, or a fresh PostgreSQL database per test.

CONVEYOR_TEST_DB=sqlite (the default) or postgresql switches the store, migration and integration
tests. For PostgreSQL, CONVEYOR_TEST_PG_URL names a server to create the test databases on
(postgresql://USER@HOST:PORT/DB, a user allowed to CREATE DATABASE); without it the session
starts a private cluster (initdb into a temporary directory, listening on 127.0.0.1 only) and
removes it at the end.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests import pgcluster
from tests.pgcluster import PostgresUnavailable

BACKEND_VARIABLE = "CONVEYOR_TEST_DB"
URL_VARIABLE = "CONVEYOR_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")
# Databases are thrown away with the cluster: durability would only slow the tests down.
PG_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def backend() -> str:
    name = os.environ.get(BACKEND_VARIABLE, "sqlite").strip().lower() or "sqlite"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_VARIABLE}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


@dataclass
class PostgresServer:
    """A server the tests may create databases on; `private` ones are stopped and removed."""

    admin_url: str
    private: pgcluster.PrivateCluster | None = None
    created: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def close(self) -> None:
        if self.private is not None:
            self.private.stop()
            return
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for name in self.created:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def postgres_server() -> PostgresServer:
    given = os.environ.get(URL_VARIABLE)
    if given:
        url = given.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as error:
            raise PostgresUnavailable(f"{URL_VARIABLE}={given}: {error}") from error
        return PostgresServer(url)
    return _start_private_cluster()


def _start_private_cluster() -> PostgresServer:
    try:
        cluster = pgcluster.start(PG_SETTINGS)
    except PostgresUnavailable as error:
        raise PostgresUnavailable(f"{error} (or set {URL_VARIABLE})") from error
    return PostgresServer(cluster.admin_url, cluster)


class Databases:
    """Hands out a fresh database URL per caller on the session's backend."""

    def __init__(self) -> None:
        self.backend = backend()
        self.server: PostgresServer | None = None

    def start(self) -> None:
        if self.backend == "postgresql" and self.server is None:
            self.server = postgres_server()

    def fresh_url(self, directory: Path) -> str:
        """A new empty database; SQLite's file goes in `directory`."""
        if self.backend == "sqlite":
            directory.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{directory / f'conveyor-{uuid.uuid4().hex[:8]}.db'}"
        self.start()
        assert self.server is not None
        return self.server.create_database()

    def fresh_server_url(self) -> str | None:
        """A URL for `conveyor server --db`, or None: the server's own SQLite file."""
        if self.backend == "sqlite":
            return None
        self.start()
        assert self.server is not None
        return self.server.create_database()

    def close(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.close()
            self.server = None


# The session's one instance: tests/conftest.py starts and closes it; the harness reads it.
DATABASES = Databases()
