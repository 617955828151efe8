"""The CLI loads only what a command needs: `--version` not even the parser, the parser no
command's implementation (gRPC, protobuf, YAML, rich, pathspec, the pipeline parser), `run`
without --source none of the upload code; and each implementation the parser names exists."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from conveyor import __version__
from conveyor.cli.errors import EXIT_UNAVAILABLE
from conveyor.cli.parser import build_parser
from conveyor.cli.parsing import Lazy, Parser
from conveyor.v1 import control_pb2, types_pb2
from tests.unit.cli_probe import probed

# Runs the CLI in a fresh interpreter and writes, once it exits, every module it imported.
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules))))\n"
    "from conveyor.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
# What no command line that stops at the parser may load.
IMPLEMENTATIONS = (
    "grpc",
    "google.protobuf",
    "conveyor.v1",
    "yaml",
    "rich",
    "pathspec",
    "conveyor.pipeline",
    "conveyor.cli.client",
)


def _run(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done, listed = probed(PROBE, "MODULES", *argv)
    return done, set(listed.split())


def _loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(f"{r}.") for r in roots))


def test_version_imports_nothing_but_the_version() -> None:
    done, modules = _run("--version")
    assert done.returncode == 0
    assert done.stdout == f"conveyor {__version__}\n"
    assert _loaded(modules, ("conveyor",)) == ["conveyor", "conveyor.cli", "conveyor.cli.main"]
    assert _loaded(modules, ("argparse", "logging", *IMPLEMENTATIONS)) == []


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("--help",), 0),
        (("run", "--help"), 0),
        (("builds", "--limit", "0"), 2),  # a usage error, found by the parser alone
        (("completion", "bash"), 0),  # the script is made from the parser alone
        (("context", "list"), 0),
        (("__complete", "contexts"), 0),  # asked on every Tab press
    ],
)
def test_the_parser_imports_no_command_implementation(
    argv: tuple[str, ...], code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path / "config.toml"))  # none: no contexts
    done, modules = _run(*argv)
    assert done.returncode == code, done.stderr
    assert _loaded(modules, IMPLEMENTATIONS) == []


def _lazies(parser: argparse.ArgumentParser) -> list[Lazy]:
    found = [v for v in parser._defaults.values() if isinstance(v, Lazy)]
    for action in parser._actions:
        if isinstance(action.type, Lazy):
            found.append(action.type)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _lazies(child)
    return found


def test_every_handler_and_type_the_parser_names_exists() -> None:
    lazies = _lazies(build_parser())
    assert len({(lazy.module, lazy.name) for lazy in lazies}) > 30
    for lazy in lazies:
        assert callable(lazy.resolve()), f"{lazy.module}:{lazy.name}"


def test_run_without_a_source_loads_no_upload_code(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yml"
    pipeline.write_text(
        "name: p\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'true'}]\n"
    )
    # Nothing listens on port 1: the submission fails, after everything `run` loads before it.
    done, modules = _run("run", str(pipeline), "--coordinator", "127.0.0.1:1", "--token", "t")
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr
    assert "cannot reach the coordinator" in done.stderr
    assert "conveyor.cli.commands" in modules and "grpc" in modules
    uploads = ("conveyor.cli.artifacts", "conveyor.cli.snapshot", "pathspec", "tarfile")
    assert _loaded(modules, (*uploads, "conveyor.v1.blobs_pb2")) == []


def test_lint_loads_no_grpc_and_needs_no_coordinator(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yml"
    pipeline.write_text("name: p\njobs:\n  a:\n    steps: [{run: 'true'}]\n")
    done, modules = _run("lint", str(pipeline))
    assert done.returncode == 0, done.stderr
    assert "conveyor.cli.lint_command" in modules and "yaml" in modules
    assert _loaded(modules, ("grpc", "google.protobuf", "conveyor.v1", "conveyor.cli.client")) == []


def _submit(
    request: control_pb2.SubmitBuildRequest, context: grpc.ServicerContext
) -> control_pb2.SubmitBuildResponse:
    return control_pb2.SubmitBuildResponse(build_id=7)


def _succeeded(build_id: int) -> control_pb2.Build:
    job = control_pb2.Job(
        name="a",
        status=types_pb2.JOB_STATUS_SUCCEEDED,
        attempts=[control_pb2.Attempt(number=1, agent_name="shell-0")],
    )
    return control_pb2.Build(
        id=build_id, name="p", status=types_pb2.BUILD_STATUS_SUCCEEDED, jobs=[job]
    )


def _get(request: control_pb2.GetBuildRequest, context: grpc.ServicerContext) -> control_pb2.Build:
    return _succeeded(request.build_id)


def _tokens(
    request: control_pb2.ListTokensRequest, context: grpc.ServicerContext
) -> control_pb2.ListTokensResponse:
    return control_pb2.ListTokensResponse(tokens=[control_pb2.Token(name="ci", role="viewer")])


def _watch(
    request: control_pb2.WatchBuildRequest, context: grpc.ServicerContext
) -> Iterator[control_pb2.BuildEvent]:
    yield control_pb2.BuildEvent(snapshot=_succeeded(request.build_id))


@pytest.fixture
def coordinator() -> Iterator[str]:
    """A gRPC server on loopback that takes a build and says at once that it succeeded: all
    `run` and `show` need to get to their end."""
    handlers = {
        "SubmitBuild": grpc.unary_unary_rpc_method_handler(
            _submit,
            request_deserializer=control_pb2.SubmitBuildRequest.FromString,
            response_serializer=control_pb2.SubmitBuildResponse.SerializeToString,
        ),
        "GetBuild": grpc.unary_unary_rpc_method_handler(
            _get,
            request_deserializer=control_pb2.GetBuildRequest.FromString,
            response_serializer=control_pb2.Build.SerializeToString,
        ),
        "ListTokens": grpc.unary_unary_rpc_method_handler(
            _tokens,
            request_deserializer=control_pb2.ListTokensRequest.FromString,
            response_serializer=control_pb2.ListTokensResponse.SerializeToString,
        ),
        "WatchBuild": grpc.unary_stream_rpc_method_handler(
            _watch,
            request_deserializer=control_pb2.WatchBuildRequest.FromString,
            response_serializer=control_pb2.BuildEvent.SerializeToString,
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("conveyor.v1.ControlService", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_run_to_its_end_draws_no_rich_off_a_terminal(coordinator: str, tmp_path: Path) -> None:
    """Followed and printed as plain lines (stdout is a pipe here): rich is for terminals."""
    pipeline = tmp_path / "p.yml"
    pipeline.write_text("name: p\njobs:\n  a:\n    steps: [{run: 'true'}]\n")
    done, modules = _run("run", str(pipeline), "--coordinator", coordinator, "--token", "t")
    assert done.returncode == 0, done.stderr
    assert "build 7 submitted\n" in done.stdout
    assert "JOB  STATUS     ATTEMPTS  EXIT  AGENT    TIME  REASON\n" in done.stdout
    assert "a    succeeded  1               shell-0  -\n" in done.stdout
    assert _loaded(modules, ("rich",)) == []
    # Nor what only other paths need: the contexts and their TOML (flags name the coordinator),
    # writing files, a schedule's cron rules (the pipeline has none), the suggestions for a
    # misspelt key (difflib: none is), JSON (no --json), shutil (no help is laid out).
    others = ("conveyor.cli.contexts", "tomllib", "tempfile", "cronsim", "difflib", "json")
    assert _loaded(modules, (*others, "shutil")) == []


def test_show_reads_no_pipeline(coordinator: str) -> None:
    """Only `run` parses a pipeline: the other build commands load neither YAML nor its rules."""
    done, modules = _run("show", "7", "--coordinator", coordinator, "--token", "t")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("build 7 (p): succeeded\n")
    assert _loaded(modules, ("yaml", "conveyor.pipeline", "rich")) == []


def test_a_listing_off_a_terminal_draws_no_rich(coordinator: str) -> None:
    done, modules = _run("token", "list", "--coordinator", coordinator, "--token", "t")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NAME  ROLE    CREATED  LAST USED\nci    viewer")
    assert _loaded(modules, ("rich",)) == []


def _parsed(argv: list[str], chosen: str | None) -> tuple[object, str, str]:
    """What parsing `argv` gives (the arguments, or the exit code) and prints."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = vars(build_parser(chosen).parse_args(argv))
        except SystemExit as done:
            return done.code, out.getvalue(), err.getvalue()
    named = {k: (v.module, v.name) if isinstance(v, Lazy) else v for k, v in args.items()}
    return named, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "p.yml", "--env", "A=1", "--no-follow", "--coordinator", "h:1", "--token", "t"],
        ["run"],  # a missing argument
        ["run", "--help"],
        ["runn", "p.yml"],  # no such command: the error lists them all
        ["builds", "--limit", "0"],
        ["token", "create", "ci", "--role", "developer"],
        ["token", "create", "--help"],
        ["token"],
        ["context", "add", "prod", "--coordinator", "h:1"],
        ["agent", "--labels", "os=linux", "--token", "t"],
    ],
)
def test_building_only_the_chosen_command_parses_the_same(argv: list[str]) -> None:
    assert _parsed(argv, argv[0]) == _parsed(argv, None)


def test_only_the_chosen_command_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_init = Parser.__init__

    def counting(self: Parser, *args: Any, **kwargs: Any) -> None:
        built.append(str(kwargs.get("prog", "")))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Parser, "__init__", counting)
    build_parser()
    everything = len(built)
    built.clear()
    build_parser("run")
    # The top-level parser, the connection options every client command shares, and `run`.
    assert len(built) == 3, built
    assert everything > 30
