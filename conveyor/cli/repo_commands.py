"""`conveyor repo add | list | remove`: repositories the coordinator watches and builds on push.

The webhook secret is given once (`--webhook-secret`) and never printed back.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import grpc

from conveyor.cli.bounds import printable
from conveyor.cli.client import CALL_TIMEOUT_S, Client
from conveyor.cli.errors import EXIT_OK, CliError
from conveyor.cli.terminal import table
from conveyor.cli.times import due, shown
from conveyor.pipeline.durations import DurationError, format_duration, parse_duration
from conveyor.times import with_times
from conveyor.v1 import repos_pb2, repos_pb2_grpc

# The coordinator's bounds (coordinator.config): refused here first, as usage errors.
MIN_POLL_S, MAX_POLL_S = 1.0, 7 * 86400.0
MAX_NAME_CHARS = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# `git ls-remote` at add time may take a while on a large or slow repository.
ADD_TIMEOUT_S = 150.0
# Heads `repo list` shows per repository before "... and N more".
SHOWN_HEADS = 5


def repo_name(text: str) -> str:
    if len(text) > MAX_NAME_CHARS or not _NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid repository name {printable(text[:80])!r}: letters, digits, '.', '_' and "
            f"'-', starting with a letter or digit, at most {MAX_NAME_CHARS} characters"
        )
    return text


def poll_interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not MIN_POLL_S <= seconds <= MAX_POLL_S:
        raise argparse.ArgumentTypeError(
            f"{printable(text[:40])}: the poll interval must be from 1s to 7d"
        )
    return seconds


def _call(client: Client, method: Any, request: object, timeout_s: float = CALL_TIMEOUT_S) -> Any:
    try:
        return method(request, metadata=client.metadata, timeout=timeout_s)
    except grpc.RpcError as error:
        raise client.explain(error) from None


def _stub(client: Client) -> repos_pb2_grpc.RepoServiceStub:
    return repos_pb2_grpc.RepoServiceStub(client.channel)


def cmd_add(args: argparse.Namespace) -> int:
    if args.webhook_secret and "\0" in args.webhook_secret:
        raise CliError("--webhook-secret: contains a NUL character")
    client = Client.from_args(args)
    request = repos_pb2.AddRepoRequest(
        name=args.name,
        url=args.url,
        pipeline_path=args.pipeline,
        poll_s=args.poll,
        webhook_secret=args.webhook_secret,
    )
    repo = _call(client, _stub(client).AddRepo, request, ADD_TIMEOUT_S)
    if args.json:
        print(json.dumps(repo_doc(repo), indent=2))
    else:
        count = len(repo.heads)
        heads = f"{count} head{'' if count == 1 else 's'}"
        print(f"repository {printable(repo.name)} added ({heads} recorded, not built)")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    repo = _call(client, _stub(client).RemoveRepo, repos_pb2.RemoveRepoRequest(name=args.name))
    if args.json:
        print(json.dumps(repo_doc(repo), indent=2))
    else:
        print(f"repository {printable(repo.name)} removed")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    reply = _call(client, _stub(client).ListRepos, repos_pb2.ListReposRequest())
    if args.json:
        print(json.dumps({"repos": [repo_doc(r) for r in reply.repos]}, indent=2))
        return EXIT_OK
    rows: list[list[str]] = [
        [
            printable(r.name),
            printable(r.url),
            format_duration(r.poll_s),
            _heads_text(r),
            shown(r.last_check_ms, args.absolute, none="never"),
            due(r.next_check_ms, args.absolute),
            printable(r.last_error) or "-",
        ]
        for r in reply.repos
    ]
    table(rows, ["NAME", "URL", "POLL", "HEADS", "CHECKED", "NEXT", "ERROR"])
    return EXIT_OK


def _heads_text(repo: repos_pb2.Repo) -> str:
    shown = [
        f"{printable(h.ref.removeprefix('refs/heads/').removeprefix('refs/tags/'))}@{h.commit[:8]}"
        for h in repo.heads[:SHOWN_HEADS]
    ]
    more = len(repo.heads) - SHOWN_HEADS
    return " ".join(shown) + (f" (+{more})" if more > 0 else "")


def repo_doc(repo: repos_pb2.Repo) -> dict[str, Any]:
    return with_times(
        {
            "name": repo.name,
            "url": repo.url,
            "pipeline": repo.pipeline_path,
            "poll_s": repo.poll_s,
            "webhook_secret": repo.has_webhook_secret,
            "heads": {h.ref: h.commit for h in repo.heads},
            "last_check_ms": repo.last_check_ms or None,
            "last_error": repo.last_error or None,
            "failures": repo.failures,
            "next_check_ms": repo.next_check_ms,
            "created_at_ms": repo.created_at_ms,
            "created_by": repo.created_by,
        }
    )
