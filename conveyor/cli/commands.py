"""The client commands: each takes parsed arguments and returns the process exit code. `run`,
the one that reads a pipeline, is `run_command`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from conveyor.cli.follow import follow_build, stream_logs
from conveyor.cli.render import print_agents, print_build, print_builds
from conveyor.cli.views import open_view, stopped_following
from conveyor.documents import agent_doc, build_doc, build_summary_doc, log_doc
from conveyor.states import BuildStatus
from conveyor.v1 import control_pb2


def _client(args: argparse.Namespace) -> Client:
    return Client.from_args(args)


def emit_json(doc: Any) -> None:
    import json  # only for --json

    print(json.dumps(doc, indent=2))


def _exit_for(build: control_pb2.Build) -> int:
    status = wire.build_status_from_pb(build.status)
    return EXIT_OK if status is BuildStatus.SUCCEEDED else EXIT_FAILED


def follow_and_print(
    args: argparse.Namespace,
    client: Client,
    build_id: int,
    earlier: control_pb2.Build | None = None,
) -> int:
    """Follows the build to its end and prints it (exit 0 if it succeeded, else 1); Ctrl-C
    stops following, not the build."""
    try:
        view = None if args.json else open_view(args)
        build = follow_build(client, build_id, not args.json, earlier, view)
    except KeyboardInterrupt:
        return stopped_following(build_id, args)
    if args.json:
        emit_json(build_doc(build))
    else:
        print_build(build)
    return _exit_for(build)


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.follow:
        return follow_and_print(args, client, args.build)
    build = client.get_build(args.build)
    if args.json:
        emit_json(build_doc(build))
    else:
        print_build(build)
    return EXIT_OK


def cmd_builds(args: argparse.Namespace) -> int:
    statuses = [state for states in args.status for state in states]
    builds = _client(args).list_builds(
        args.limit, statuses, name=args.name or "", branch=args.branch or ""
    )
    if args.json:
        emit_json([build_summary_doc(b) for b in builds])
    else:
        print_builds(builds, absolute=args.absolute)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    request = control_pb2.ReadLogsRequest(
        build_id=args.build,
        job=args.job,
        step=args.step or "",
        attempt_number=args.attempt,
        follow=args.follow,
    )
    if args.json:
        return _logs_json(args, request)
    out = sys.stdout.buffer
    try:
        for data in stream_logs(_client(args), request):
            out.write(data)
            out.flush()
    except KeyboardInterrupt:
        if not args.follow:
            raise
        return stopped_following(args.build, args)
    return EXIT_OK


def _logs_json(args: argparse.Namespace, request: control_pb2.ReadLogsRequest) -> int:
    if args.follow:
        raise CliError(
            "logs: --json prints one document once the steps' logs are read; "
            "use --follow without --json to watch the bytes as they come"
        )
    client = _client(args)
    chunks = list(client.read_logs(request))
    # The attempt the logs came from, so a retry starting meanwhile cannot mix two attempts.
    number = chunks[0].attempt_number if chunks else args.attempt
    build = client.get_build(args.build)
    if not number:
        found = next((j for j in build.jobs if j.name == args.job), None)
        number = found.attempts[-1].number if found and found.attempts else 0
    emit_json(log_doc(build, args.job, number, chunks, args.step or ""))
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Exit 0 when the build is canceled or being canceled; 1 when it had already finished
    otherwise (succeeded or failed): the build was not canceled, so `cancel B && report canceled`
    must not pass, while the input was valid (not 2). `|| true` makes cleanup idempotent."""
    build = _client(args).cancel(args.build)
    status = wire.build_status_from_pb(build.status)
    already = status.final and not build.cancel_requested
    if args.json:
        emit_json(build_doc(build))
    elif already:
        print(f"build {build.id}: had already finished ({status.value}); nothing to cancel")
    elif status.final:
        print(f"build {build.id}: {status.value}")
    else:
        print(f"build {build.id}: cancel requested")
    return EXIT_FAILED if already else EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    client = _client(args)
    # What the build had before the retry: following it shows only the new attempts.
    earlier = client.get_build(args.build) if args.follow else None
    build = client.retry(args.build, args.job or "")
    if args.follow:
        return follow_and_print(args, client, build.id, earlier)
    if args.json:
        emit_json(build_doc(build))
    else:
        print_build(build)
    return EXIT_OK


_MODE_OF = {"pause": "paused", "resume": "active", "drain": "draining"}


def cmd_agent_mode(args: argparse.Namespace) -> int:
    agent = _client(args).set_agent_mode(args.agent, _MODE_OF[args.command])
    if args.json:
        emit_json(agent_doc(agent))
    else:
        print(f"agent {printable(agent.name)}: {agent.state}")
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    if args.action == "revoke":
        return _revoke_agent(args)
    agents = _client(args).agents()
    if args.json:
        emit_json([agent_doc(agent) for agent in agents])
    else:
        print_agents(agents, absolute=args.absolute)
    return EXIT_OK


def _revoke_agent(args: argparse.Namespace) -> int:
    if not args.name:
        raise CliError("agents revoke: name the agent (conveyor agents revoke NAME)")
    agent = _client(args).revoke_agent(args.name)
    if args.json:
        emit_json(agent_doc(agent))
    else:
        print(f"agent {printable(agent.name)} revoked: its credential no longer works")
    return EXIT_OK
