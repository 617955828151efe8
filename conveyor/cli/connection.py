"""Which coordinator a client command talks to, with which token and which CA.

Each value comes from the first place that has it: the command's flags (`--coordinator`,
`--token` / `--token-file`, `--ca`); the environment (CONVEYOR_ADDR, CONVEYOR_TOKEN,
CONVEYOR_CA); then one source, `--context NAME` or `--data-dir DIR`, else $CONVEYOR_CONTEXT,
else the config's current context, else the local server's files. A source's CA only ever
verifies the source's own address: an address given otherwise is another server.

Light (no gRPC), so `__complete` and the tests use it as it is.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from conveyor import local
from conveyor.cli.errors import CliError
from conveyor.local import (
    ADDRESS_FILE,
    CA_FILE,
    CLIENT_TOKEN_FILE,
    DEFAULT_ADDRESS,
    local_address,
    read_local,
)
from conveyor.tls import CaFileError, TrustedCa, load_ca, resolve_ca
from conveyor.tokens import TokenFileError, read_token_file

if TYPE_CHECKING:
    # Read only when flags and environment leave the address or the token open.
    from conveyor.cli import contexts


@dataclass(frozen=True)
class Connection:
    address: str
    token: str
    ca: TrustedCa | None
    # The context it came from (shown by `version`); None for flags, env, data dirs.
    context: str | None = None


@dataclass(frozen=True)
class Source:
    """Where what flags and environment leave open comes from."""

    label: str  # how messages name it: "context prod", "--data-dir /srv/conveyor"
    address: str | None
    token_file: Path | None
    ca_file: Path | None
    context: str | None = None
    # The local server found by default: its files missing or unreadable mean there is none.
    lenient: bool = False

    def token(self) -> str | None:
        if self.token_file is None:
            return None
        if self.lenient:
            return read_local(CLIENT_TOKEN_FILE)
        try:
            return read_token_file(str(self.token_file), f"{self.label}: token file")
        except TokenFileError as error:
            raise CliError(str(error)) from None

    def ca(self) -> TrustedCa | None:
        if self.ca_file is None or (self.lenient and not self.ca_file.is_file()):
            return None
        try:
            return load_ca(self.ca_file, f"{self.label}: CA")
        except CaFileError as error:
            raise CliError(str(error)) from None


def resolve(args: argparse.Namespace) -> Connection:
    chosen = _flag_source(args)  # read even when flags say all: a wrong name is reported
    address: str | None = getattr(args, "coordinator", None) or os.environ.get("CONVEYOR_ADDR")
    token = _given_token(args)
    try:
        ca = resolve_ca(getattr(args, "ca", None), local=False)
    except CaFileError as error:
        raise CliError(str(error)) from None
    source = chosen or (None if address and token else default_source())
    context = None
    if not address:
        assert source is not None  # only flags and env leave no source, and they set address
        address = source.address or _no_address(source)
        ca = ca or source.ca()
        context = source.context
    if not token:
        assert source is not None
        token = source.token() or _no_token(source)
    return Connection(address, token, ca, context)


def _given_token(args: argparse.Namespace) -> str | None:
    if getattr(args, "token", None):
        return str(args.token)
    if getattr(args, "token_file", None):
        try:
            return read_token_file(args.token_file, "--token-file")
        except TokenFileError as error:
            raise CliError(str(error)) from None
    return os.environ.get("CONVEYOR_TOKEN") or None


def _flag_source(args: argparse.Namespace) -> Source | None:
    if getattr(args, "data_dir", None):
        return data_dir_source(Path(args.data_dir).expanduser())
    if getattr(args, "context", None):
        from conveyor.cli import contexts

        return context_source(contexts.find(contexts.load(), args.context, "--context"))
    return None


def default_source() -> Source:
    """$CONVEYOR_CONTEXT's context, else the current one, else the local server."""
    from conveyor.cli import contexts

    named = os.environ.get("CONVEYOR_CONTEXT")
    config = contexts.load()
    if named:
        return context_source(contexts.find(config, named, "CONVEYOR_CONTEXT"))
    if config.current is not None:
        return context_source(config.contexts[config.current])
    return Source(
        "the local server",
        local_address() or DEFAULT_ADDRESS,
        local.DEFAULT_SERVER_DIR / CLIENT_TOKEN_FILE,
        local.DEFAULT_SERVER_DIR / CA_FILE,
        lenient=True,
    )


def context_source(context: contexts.Context) -> Source:
    return Source(
        f"context {context.name}",
        context.coordinator,
        Path(context.token_file).expanduser() if context.token_file else None,
        Path(context.ca).expanduser() if context.ca else None,
        context=context.name,
    )


def data_dir_source(data_dir: Path) -> Source:
    """The files `conveyor server --data-dir DIR` writes: its address, client token and CA."""
    token, ca = data_dir / CLIENT_TOKEN_FILE, data_dir / CA_FILE
    address_file = data_dir / ADDRESS_FILE
    if not any(path.is_file() for path in (address_file, token)):
        raise CliError(
            f"--data-dir {data_dir}: no coordinator's files there ({ADDRESS_FILE}, "
            f"{CLIENT_TOKEN_FILE}): is it the --data-dir of a `conveyor server`?"
        )
    return Source(
        f"--data-dir {data_dir}",
        local_address(data_dir),
        token if token.is_file() else None,
        ca if ca.is_file() else None,
    )


def _no_address(source: Source) -> NoReturn:
    raise CliError(
        f"{source.label}: the server has not written its address ({ADDRESS_FILE}): is it "
        "running? (or pass --coordinator HOST:PORT)"
    )


def _no_token(source: Source) -> NoReturn:
    if source.lenient:
        raise CliError(
            "no client token: pass --token-file F (or --token), set CONVEYOR_TOKEN or use a "
            f"context (a local server keeps one in {source.token_file})"
        )
    if source.context is not None:
        raise CliError(
            f"no client token: context {source.context} has no token_file (add it again with "
            "--token-file F), and neither --token-file nor CONVEYOR_TOKEN is given"
        )
    raise CliError(
        f"no client token: {source.label} holds no {CLIENT_TOKEN_FILE} (its server was given "
        "its token): pass --token-file F or set CONVEYOR_TOKEN"
    )
