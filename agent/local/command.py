"""`conveyor exec PIPELINE.yml`: checks the input, plans the jobs, runs them here, and prints
what `conveyor run` prints (live progress, the final table or `--json` document)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from agent import executors
from agent.config import STEP_MEMORY_DEFAULT_BYTES, Isolation
from agent.executors.base import Executor
from agent.local.board import Board
from agent.local.peer import Blobs, LocalPeer
from agent.local.plan import read_plan_input, secrets_of, select_jobs
from agent.local.run import EXEC_BUILD_ID, LocalRun, Plan
from agent.peer import GitSource, Snapshot
from conveyor import wire
from conveyor.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, CliError
from conveyor.cli.render import print_build
from conveyor.cli.views import View, open_view
from conveyor.documents import build_doc
from conveyor.pipeline import JobDef, Pipeline
from conveyor.states import BuildStatus
from conveyor.v1 import control_pb2

LOGGER = logging.getLogger(__name__)
EXIT_INTERRUPTED = 130


def _executor(kind: str, work_dir: Path) -> Executor:
    cpus = max((os.cpu_count() or 1) - 0.5, 0.5)
    isolation = Isolation(memory_bytes=STEP_MEMORY_DEFAULT_BYTES, cpus=cpus)
    try:
        return executors.create(kind, work_dir / "workspaces", isolation)
    except Exception as error:  # whatever the engine's client raises when it is not there
        raise CliError(
            f"cannot use Docker: {error} (is the engine running? or try --executor shell)",
            EXIT_UNAVAILABLE,
        ) from None


def _source(source: str | None, pipeline: Pipeline, blobs: Blobs) -> Snapshot | GitSource | None:
    """`--source DIR` as a snapshot, else the pipeline's own `source:` repository."""
    if not source:
        git = pipeline.source
        return GitSource(git.url, git.ref, "") if git is not None else None
    from conveyor.cli.snapshot import make_snapshot

    try:
        made = make_snapshot(Path(source))
    except OSError as error:
        raise CliError(f"--source {source}: {error}") from None
    try:
        with made.path.open("rb") as handle:
            digest, size = blobs.put(iter(lambda: handle.read(1024 * 1024), b""))
    finally:
        made.path.unlink(missing_ok=True)
    return Snapshot(digest, size)


def _board(
    args: argparse.Namespace, pipeline: Pipeline, jobs: list[JobDef]
) -> tuple[Board, View | None]:
    """The build's state and, unless --json, the view that shows it as `run` shows a build
    (the live view on a terminal, plain lines otherwise, `--logs` and `--color`)."""
    shown = [job for job in pipeline.jobs if job in jobs]  # in file order, as `run` does
    if args.json:
        return Board(EXEC_BUILD_ID, pipeline, shown, lambda build: None, lambda chunk: None), None
    view = open_view(args)
    return Board(EXEC_BUILD_ID, pipeline, shown, view.snapshot, view.log), view


def cmd_exec(args: argparse.Namespace) -> int:
    pipeline, env = read_plan_input(args)
    jobs = select_jobs(pipeline, args.job, approve_all=args.approve_all)
    secrets = secrets_of(jobs, args.secret or [])
    if not args.verbose:
        # The agent's own account of each attempt is for an agent's operator; exec shows the
        # build as `run` does. Warnings still come through.
        logging.getLogger("agent").setLevel(logging.WARNING)
    board, view = _board(args, pipeline, jobs)
    with tempfile.TemporaryDirectory(prefix="conveyor-exec-") as tmp:
        work_dir = Path(tmp)
        executor = _executor(args.executor, work_dir)
        peer = LocalPeer(board, Blobs(work_dir / "blobs"))
        plan = Plan(
            pipeline=pipeline,
            jobs=jobs,
            env=env,
            secrets=secrets,
            source=_source(args.source, pipeline, peer.blobs),
            default_image=args.default_image if args.executor == "docker" else "",
            agent_name=f"exec-{os.getpid()}",
            spool_dir=work_dir / "spool",
        )
        try:
            _run(args, plan, LocalRun(plan, executor, peer, board), view)
        finally:
            # What an agent keeps between attempts (Docker's spare networks): no later exec
            # has this name to sweep it at its start, as an agent does.
            executor.remove_leftovers(plan.agent_name)
    return _report(args, board.end(), interrupted=peer.cancel.is_set())


def _run(args: argparse.Namespace, plan: Plan, run: LocalRun, view: View | None) -> None:
    if view is None:
        run.run()
        return
    names = ", ".join(job.name for job in plan.jobs)
    print(f"exec: {plan.pipeline.name} on this machine ({args.executor}): {names}", flush=True)
    with view:
        run.run()


def _report(args: argparse.Namespace, build: control_pb2.Build, *, interrupted: bool) -> int:
    if args.json:
        print(json.dumps(build_doc(build), indent=2))
    else:
        print_build(build)
    if interrupted:
        print("conveyor: exec interrupted; the running step was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    status = wire.build_status_from_pb(build.status)
    return EXIT_OK if status is BuildStatus.SUCCEEDED else EXIT_FAILED


__all__ = ["cmd_exec"]
