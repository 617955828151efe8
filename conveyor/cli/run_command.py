"""`conveyor run`: check a pipeline offline, submit it (with its source), and follow the build.

The pipeline rules and YAML are imported with this module, not inside the command: loading is
then all done before the command starts, with the garbage collector held off (`collector`).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from conveyor.cli.client import Client
from conveyor.cli.commands import emit_json, follow_and_print
from conveyor.cli.errors import EXIT_OK, CliError
from conveyor.cli.refs import branch_or_tag
from conveyor.cli.views import again
from conveyor.pipeline import Pipeline, PipelineError, load_pipeline, reserved_env_problem

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env(pairs: list[str]) -> dict[str, str]:
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
    from conveyor.paths import format_size

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
    client = Client.from_args(args)
    source = _source(args, client)
    build_id = client.submit(text, Path(args.pipeline).name, env, source, ref)
    if args.no_follow:
        if args.json:
            emit_json({"id": build_id})
        else:
            follow = again(args, f"show {build_id} --follow")
            print(f"build {build_id} submitted; follow it with: {follow}")
        return EXIT_OK
    if not args.json:
        print(f"build {build_id} submitted", flush=True)
    return follow_and_print(args, client, build_id)
