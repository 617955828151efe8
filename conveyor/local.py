"""The files a coordinator started with default settings keeps for the clients and agents on
its own machine: its address, its tokens and (with `--tls auto`) its CA."""

from __future__ import annotations

from pathlib import Path

DEFAULT_SERVER_DIR = Path.home() / ".conveyor" / "server"
DEFAULT_ADDRESS = "127.0.0.1:7420"
ADDRESS_FILE = "server.addr"
CLIENT_TOKEN_FILE = "client-token"
AGENT_TOKEN_FILE = "agent-token"
CA_FILE = "tls/ca.pem"


def local_file(name: str) -> Path:
    return DEFAULT_SERVER_DIR / name


def read_local(name: str, data_dir: Path | None = None) -> str | None:
    """The stripped text of the file `name` of the local server (or of the server whose
    `--data-dir` is `data_dir`); None when there is none."""
    path = (data_dir or DEFAULT_SERVER_DIR) / name
    try:
        return path.read_text().strip() or None
    except OSError:  # none, or not this user's: as if there were no local server
        return None


def local_address(data_dir: Path | None = None) -> str | None:
    """Where the local server (or the one of `data_dir`) listens, as a client dials it (a
    wildcard host is loopback)."""
    address = read_local(ADDRESS_FILE, data_dir)
    if address is None:
        return None
    host, _, port = address.rpartition(":")
    loopback = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}
    return f"{loopback.get(host, host)}:{port}"
