"""`conveyor secret set | list | rm`: values jobs name in `secrets:`, never printed back.

A value comes from standard input (a prompt without echo on a terminal) or `--from-file`, never
from an argument: an argument stays in shell history and shows in every process listing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import grpc

from conveyor.cli.bounds import printable
from conveyor.cli.client import CALL_TIMEOUT_S, Client, explain
from conveyor.cli.errors import EXIT_OK, CliError
from conveyor.cli.terminal import table
from conveyor.cli.times import shown
from conveyor.pipeline.delivery import secret_name_problem
from conveyor.times import with_times
from conveyor.v1 import secrets_pb2, secrets_pb2_grpc

# Read at most this much of a value (the coordinator's own limit is 64 KiB); more is refused here.
MAX_VALUE_READ_BYTES = 64 * 1024 + 2


def secret_name(text: str) -> str:
    problem = secret_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _stub(client: Client) -> secrets_pb2_grpc.SecretServiceStub:
    return secrets_pb2_grpc.SecretServiceStub(client.channel)


def _call(client: Client, method: Any, request: object) -> Any:
    try:
        return method(request, metadata=client.metadata, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        raise explain(error, client.address) from None


def read_value(from_file: str | None) -> str:
    """The value as given, minus one trailing newline (what `echo` and editors add)."""
    if from_file is not None:
        try:
            with Path(from_file).open("rb") as handle:
                raw = handle.read(MAX_VALUE_READ_BYTES)
        except OSError as error:
            raise CliError(f"--from-file: cannot read {from_file}: {error.strerror}") from None
    elif sys.stdin.isatty():
        raw = getpass.getpass("value (not shown): ").encode()
    else:
        raw = sys.stdin.buffer.read(MAX_VALUE_READ_BYTES)
    if len(raw) >= MAX_VALUE_READ_BYTES:
        raise CliError(f"the value is too long (more than {MAX_VALUE_READ_BYTES - 2} bytes)")
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not raw:
        raise CliError("the value is empty (pipe it in, or use --from-file)")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise CliError("the value is not UTF-8 text") from None


def cmd_set(args: argparse.Namespace) -> int:
    if args.value is not None:
        raise CliError(
            "a secret's value is never taken from an argument (it would stay in shell history "
            "and show in process listings): pipe it in, or use --from-file"
        )
    value = read_value(args.from_file)
    client = Client.from_args(args)
    request = secrets_pb2.SetSecretRequest(name=args.name, environment=args.env or "", value=value)
    secret = _call(client, _stub(client).SetSecret, request)
    _report(args, "set", secret)
    return EXIT_OK


def cmd_rm(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    request = secrets_pb2.RemoveSecretRequest(name=args.name, environment=args.env or "")
    secret = _call(client, _stub(client).RemoveSecret, request)
    _report(args, "removed", secret)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    reply = _call(client, _stub(client).ListSecrets, secrets_pb2.ListSecretsRequest())
    if args.json:
        print(json.dumps({"secrets": [secret_doc(s) for s in reply.secrets]}, indent=2))
        return EXIT_OK
    rows: list[list[str]] = [
        [
            printable(s.name),
            printable(s.environment) or "(any job)",
            shown(s.updated_at_ms, args.absolute),
            printable(s.updated_by),
        ]
        for s in reply.secrets
    ]
    table(rows, ["NAME", "ENVIRONMENT", "UPDATED", "BY"])
    return EXIT_OK


def secret_doc(secret: secrets_pb2.Secret) -> dict[str, Any]:
    return with_times(
        {
            "name": secret.name,
            "environment": secret.environment or None,
            "updated_at_ms": secret.updated_at_ms,
            "updated_by": secret.updated_by,
        }
    )


def _report(args: argparse.Namespace, what: str, secret: secrets_pb2.Secret) -> None:
    if args.json:
        print(json.dumps(secret_doc(secret), indent=2))
        return
    scope = f" for environment {printable(secret.environment)}" if secret.environment else ""
    print(f"secret {printable(secret.name)}{scope} {what}")
