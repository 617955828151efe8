"""`conveyor version`: this CLI's release and protocol, and the coordinator's when it answers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from conveyor import PROTOCOL_VERSION, __version__
from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_OK, CliError


def cmd_version(args: argparse.Namespace) -> int:
    """Exit 0 even without a coordinator: this CLI's own version is the answer asked for."""
    cli = {"version": __version__, "protocol": PROTOCOL_VERSION}
    coordinator: dict[str, Any]
    try:
        client = Client.from_args(args)
        info = client.version()
        coordinator = {
            "address": client.address,
            "version": info.version,
            "protocol": info.protocol_version,
        }
        if client.connection.context is not None:
            coordinator["context"] = client.connection.context
    except CliError as error:
        coordinator = {"error": str(error)}
    if args.json:
        print(json.dumps({"cli": cli, "coordinator": coordinator}, indent=2))
        return EXIT_OK
    print(f"cli: conveyor {__version__} (protocol {PROTOCOL_VERSION})")
    if "error" in coordinator:
        print(f"coordinator: unknown ({printable(coordinator['error'])})")
        return EXIT_OK
    release = printable(coordinator["version"])
    mismatch = "" if coordinator["protocol"] == PROTOCOL_VERSION else ", not this CLI's"
    via = f" (context {coordinator['context']})" if "context" in coordinator else ""
    print(
        f"coordinator at {coordinator['address']}{via}: conveyor {release} "
        f"(protocol {coordinator['protocol']}{mismatch})"
    )
    return EXIT_OK
