"""The client commands: each takes parsed arguments and returns the process exit code."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from conveyor.cli.follow import follow_build, stream_logs
from conveyor.cli.refs import branch_or_tag
from conveyor.cli.render import print_agents, print_build, print_builds
from conveyor.cli.views import again, open_view, stopped_following
from conveyor.documents import agent_doc, build_doc, build_summary_doc, log_doc
from conveyor.paths import format_size
from conveyor.states import BuildStatus
from conveyor.v1 import control_pb2

if TYPE_CHECKING:
    # Only `run` reads a pipeline (YAML and its rules): the other commands do not load them.
    from conveyor.pipeline import Pipeline

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _client(args: argparse.Namespace) -> Client:
    return Client.from_args(args)


def _emit_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def parse_env(pairs: list[str]) -> dict[str, str]:
    from conveyor.pipeline import reserved_env_problem

    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise CliError(f"--env {pair!r}: expected NAME=VALUE with NAME like MY_VAR")
        reserved = reserved_env_problem(name)
        if reserved is not None:
            raise CliError(f"--env {pair!r}: {reserved}")
        env[name] = value
    return env


def _read_pipeline(path: str) -> tuple[str, Pipeline]:
    from conveyor.pipeline import PipelineError, load_pipeline

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    # The coordinator validates again; this fails fast, and offline. Parsed once: `_ref` reads
    # the pipeline's own `source:` from it too.
    try:
        pipeline = load_pipeline(data, path)
    except PipelineError as error:
        raise CliError(str(error)) from None
    return data.decode(), pipeline


def _exit_for(build: control_pb2.Build) -> int:
    status = wire.build_status_from_pb(build.status)
    return EXIT_OK if status is BuildStatus.SUCCEEDED else EXIT_FAILED


def _source(args: argparse.Namespace, client: Client) -> tuple[str, str, str]:
    """(snapshot sha256, git URL, git ref) for the build, uploading --source DIR if needed."""
    if args.source and args.git:
        raise CliError("--source and --git: give one source for the build")
    if args.ref and not args.git:
        raise CliError("--ref needs --git URL")
    if args.git:
        if args.git.startswith("-") or (args.ref or "").startswith("-"):
            raise CliError("--git/--ref: a URL or ref cannot start with '-'")
        return "", args.git, args.ref or "HEAD"
    if not args.source:
        return "", "", ""
    # Only an upload needs the blob protocol, tar and the ignore-file matcher: loaded here.
    from conveyor.cli.artifacts import Transfers

    uploaded = Transfers(client).upload_source(Path(args.source))
    if not args.json:
        state = "uploaded" if uploaded.sent else "already on the coordinator"
        print(
            f"source {args.source}: {uploaded.files} entries, {format_size(uploaded.size)}, "
            f"sha256 {uploaded.sha256[:12]} ({state})",
            flush=True,
        )
    return uploaded.sha256, "", ""


def _ref(args: argparse.Namespace, pipeline: Pipeline) -> tuple[str, str]:
    """(branch, tag) the build's source is: --branch for --source, else asked of the git
    repository (--git, or the pipeline's own `source:`)."""
    if args.branch is not None:
        if not args.source:
            raise CliError("--branch needs --source DIR (for --git, the ref says what it is)")
        if not args.branch or args.branch.startswith("-"):
            raise CliError("--branch: a branch name cannot be empty or start with '-'")
        return args.branch, ""
    if args.git:
        return branch_or_tag(args.git, args.ref or "HEAD")
    if not args.source and pipeline.source is not None:
        return branch_or_tag(pipeline.source.url, pipeline.source.ref)
    return "", ""


def cmd_run(args: argparse.Namespace) -> int:
    env = parse_env(args.env or [])
    text, pipeline = _read_pipeline(args.pipeline)
    ref = _ref(args, pipeline)
    client = _client(args)
    source = _source(args, client)
    build_id = client.submit(text, Path(args.pipeline).name, env, source, ref)
    if args.no_follow:
        if args.json:
            _emit_json({"id": build_id})
        else:
            follow = again(args, f"show {build_id} --follow")
            print(f"build {build_id} submitted; follow it with: {follow}")
        return EXIT_OK
    if not args.json:
        print(f"build {build_id} submitted", flush=True)
    return _follow_and_print(args, client, build_id)


def _follow_and_print(
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
        _emit_json(build_doc(build))
    else:
        print_build(build)
    return _exit_for(build)


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.follow:
        return _follow_and_print(args, client, args.build)
    build = client.get_build(args.build)
    if args.json:
        _emit_json(build_doc(build))
    else:
        print_build(build)
    return EXIT_OK


def cmd_builds(args: argparse.Namespace) -> int:
    statuses = [state for states in args.status for state in states]
    builds = _client(args).list_builds(
        args.limit, statuses, name=args.name or "", branch=args.branch or ""
    )
    if args.json:
        _emit_json([build_summary_doc(b) for b in builds])
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
    _emit_json(log_doc(build, args.job, number, chunks, args.step or ""))
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Exit 0 when the build is canceled or being canceled; 1 when it had already finished
    otherwise (succeeded or failed): the build was not canceled, so `cancel B && report canceled`
    must not pass, while the input was valid (not 2). `|| true` makes cleanup idempotent."""
    build = _client(args).cancel(args.build)
    status = wire.build_status_from_pb(build.status)
    already = status.final and not build.cancel_requested
    if args.json:
        _emit_json(build_doc(build))
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
        return _follow_and_print(args, client, build.id, earlier)
    if args.json:
        _emit_json(build_doc(build))
    else:
        print_build(build)
    return EXIT_OK


_MODE_OF = {"pause": "paused", "resume": "active", "drain": "draining"}


def cmd_agent_mode(args: argparse.Namespace) -> int:
    agent = _client(args).set_agent_mode(args.agent, _MODE_OF[args.command])
    if args.json:
        _emit_json(agent_doc(agent))
    else:
        print(f"agent {printable(agent.name)}: {agent.state}")
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    if args.action == "revoke":
        return _revoke_agent(args)
    agents = _client(args).agents()
    if args.json:
        _emit_json([agent_doc(agent) for agent in agents])
    else:
        print_agents(agents, absolute=args.absolute)
    return EXIT_OK


def _revoke_agent(args: argparse.Namespace) -> int:
    if not args.name:
        raise CliError("agents revoke: name the agent (conveyor agents revoke NAME)")
    agent = _client(args).revoke_agent(args.name)
    if args.json:
        _emit_json(agent_doc(agent))
    else:
        print(f"agent {printable(agent.name)} revoked: its credential no longer works")
    return EXIT_OK
