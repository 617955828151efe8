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
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

BACKEND_VARIABLE = "CONVEYOR_TEST_DB"
URL_VARIABLE = "CONVEYOR_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")
PG_BIN_DIRS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13))
# Databases are thrown away with the cluster: durability would only slow the tests down.
PG_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def backend() -> str:
    name = os.environ.get(BACKEND_VARIABLE, "sqlite").strip().lower() or "sqlite"
    if name not in BACKENDS:
        raise ValueError(f"{BACKEND_VARIABLE}={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


@dataclass
class PostgresServer:
    """A server the tests may create databases on; `private` ones are stopped and removed."""

    admin_url: str
    private_dir: Path | None = None
    created: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def close(self) -> None:
        if self.private_dir is not None:
            _pg_ctl(self.private_dir, "stop", "-m", "immediate")
            shutil.rmtree(self.private_dir, ignore_errors=True)
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


def _bin_dir() -> Path:
    for candidate in PG_BIN_DIRS:
        if (candidate / "initdb").exists():
            return candidate
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb) found; scripts/setup.sh installs the "
        f"postgresql package, or set {URL_VARIABLE}"
    )


def _as_cluster_owner(args: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package's postgres user owns the cluster then.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _pg_ctl(directory: Path, *args: str) -> None:
    command = [str(_bin_dir() / "pg_ctl"), "-D", str(directory / "data"), *args]
    subprocess.run(_as_cluster_owner(command), check=True, capture_output=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_private_cluster() -> PostgresServer:
    bin_dir = _bin_dir()
    directory = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(directory / "data"), "-U", "postgres"]
    initdb += ["--auth=trust", "-E", "UTF8", "--no-sync"]
    try:
        subprocess.run(_as_cluster_owner(initdb), check=True, capture_output=True, timeout=120)
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
        options += "".join(f" -c {setting}" for setting in PG_SETTINGS)
        log = directory / "server.log"
        _pg_ctl(directory, "-w", "-t", "60", "-l", str(log), "-o", options, "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        output = getattr(error, "stderr", b"") or b""
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"could not start PostgreSQL: {output.decode()}") from error
    return PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", directory)


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
