"""`conveyor context add|use|list|remove`: the named coordinators of the CLI's config file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from conveyor.cli import contexts
from conveyor.cli.bounds import printable
from conveyor.cli.errors import EXIT_OK, CliError
from conveyor.tls import CaFileError, load_ca
from conveyor.tokens import TokenFileError, read_token_file

MAX_PORT = 65535


def check_address(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
        raise CliError(f"--coordinator {text!r}: expected HOST:PORT (e.g. ci.example.com:7420)")
    return text


def _absolute(path: str) -> str:
    # Kept absolute: the context is used from any directory.
    return str(Path(path).expanduser().absolute())


def cmd_add(args: argparse.Namespace) -> int:
    name = contexts.check_name(args.name)
    address = check_address(args.coordinator)
    token_file = _absolute(args.token_file) if args.token_file else None
    ca = _absolute(args.ca) if args.ca else None
    try:
        # Checked now, so a typo shows here rather than on the first command that uses it.
        if token_file:
            read_token_file(token_file, "--token-file")
        if ca:
            load_ca(Path(ca), "--ca")
    except (TokenFileError, CaFileError) as error:
        raise CliError(str(error)) from None
    config = contexts.load()
    replaced = name in config.contexts
    config.contexts[name] = contexts.Context(name, address, token_file, ca)
    if args.use:
        config.current = name
    contexts.save(config)
    verb = "updated" if replaced else "added"
    now = "; it is the current context" if config.current == name else ""
    print(f"context {name} {verb} in {config.path}{now}", file=sys.stderr)
    return EXIT_OK


def cmd_use(args: argparse.Namespace) -> int:
    config = contexts.load()
    contexts.find(config, args.name, "`context use`")
    config.current = args.name
    contexts.save(config)
    print(f"current context: {args.name}", file=sys.stderr)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    config = contexts.load()
    contexts.find(config, args.name, "`context remove`")
    del config.contexts[args.name]
    cleared = config.current == args.name
    if cleared:
        config.current = None
    contexts.save(config)
    note = " (it was current: now none is, and commands use the local server)" if cleared else ""
    print(f"context {args.name} removed{note}", file=sys.stderr)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    config = contexts.load()
    docs = [
        {
            "name": c.name,
            "coordinator": c.coordinator,
            "token_file": c.token_file,
            "ca": c.ca,
            "current": c.name == config.current,
        }
        for c in config.contexts.values()
    ]
    if args.json:
        doc = {"config": str(config.path), "current": config.current, "contexts": docs}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    if not docs:
        print(
            f"no contexts in {config.path} (add one with `conveyor context add`)", file=sys.stderr
        )
        return EXIT_OK
    from conveyor.cli.terminal import table  # rich: only for the table

    rows = [
        [
            "*" if d["current"] else "",
            str(d["name"]),
            printable(str(d["coordinator"])),
            printable(str(d["token_file"] or "-")),
            printable(str(d["ca"] or "-")),
        ]
        for d in docs
    ]
    table(rows, ["", "NAME", "COORDINATOR", "TOKEN FILE", "CA"])
    return EXIT_OK
