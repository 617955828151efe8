"""A private PostgreSQL cluster: initdb into a directory of its own, a server listening on
127.0.0.1 only on a free port, stopped and removed by stop().

The test suite (tests/databases.py) and the benchmark (`scripts/bench --postgres auto`) both
start one; each passes the server settings it wants.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PG_BIN_DIRS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13))
# The cluster owner when the caller is root (initdb refuses to run as root): the Debian
# package's user.
OWNER = "postgres"
INITDB_TIMEOUT_S = 120
PG_CTL_TIMEOUT_S = 60
LOG_TAIL_CHARS = 2000


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


def bin_dir() -> Path:
    for candidate in PG_BIN_DIRS:
        if (candidate / "initdb").exists():
            return candidate
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb) found; scripts/setup.sh installs the "
        "postgresql package"
    )


@dataclass(frozen=True)
class PrivateCluster:
    directory: Path  # the cluster's own: data/, server.log and the server's socket
    port: int

    @property
    def admin_url(self) -> str:
        """The superuser's URL (trusted on loopback): may CREATE DATABASE."""
        return f"postgresql://{OWNER}@127.0.0.1:{self.port}/postgres"

    def stop(self, remove: bool = True) -> None:
        """Stops the server (already stopped is fine) and, unless told not to, removes it all."""
        # Its databases are thrown away: no shutdown checkpoint is worth waiting for.
        _pg_ctl(self.directory, "stop", "-m", "immediate", check=False)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


def start(settings: Sequence[str], parent: Path | None = None) -> PrivateCluster:
    """Starts a cluster in a new directory under `parent` (default: the system's temporary
    directory) with these `-c` settings. As root, the cluster runs as OWNER, and `parent` is
    made traversable (not listable) by other users so that OWNER reaches its directory."""
    binaries = bin_dir()
    if parent is not None and os.geteuid() == 0:
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
    directory = Path(tempfile.mkdtemp(prefix="conveyor-pg-", dir=parent))
    if os.geteuid() == 0:
        shutil.chown(directory, OWNER)
    initdb = [str(binaries / "initdb"), "-D", str(directory / "data"), "-U", OWNER]
    initdb += ["--auth=trust", "-E", "UTF8", "--no-sync"]
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
    options += "".join(f" -c {setting}" for setting in settings)
    log = directory / "server.log"
    try:
        _run(initdb, INITDB_TIMEOUT_S)
        _pg_ctl(
            directory, "-w", "-t", str(PG_CTL_TIMEOUT_S), "-l", str(log), "-o", options, "start"
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        output = (getattr(error, "stderr", b"") or b"").decode()
        if log.exists():
            output += log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        shutil.rmtree(directory, ignore_errors=True)
        raise PostgresUnavailable(f"could not start PostgreSQL: {output}") from error
    return PrivateCluster(directory, port)


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", OWNER, "--", *args] if os.geteuid() == 0 else args


def _run(command: list[str], timeout_s: float, check: bool = True) -> None:
    subprocess.run(_as_owner(command), check=check, capture_output=True, timeout=timeout_s)


def _pg_ctl(directory: Path, *args: str, check: bool = True) -> None:
    command = [str(bin_dir() / "pg_ctl"), "-D", str(directory / "data"), *args]
    _run(command, PG_CTL_TIMEOUT_S, check)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
