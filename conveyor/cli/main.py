"""`conveyor`: the one command for operators (server, agent) and developers (run, logs...)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from conveyor import __version__
from conveyor.cli import (
    access_commands,
    artifact_commands,
    commands,
    delivery,
    dora_command,
    gate_commands,
    notify_commands,
    repo_commands,
    rollback_command,
    secret_commands,
)
from conveyor.cli.bounds import (
    MAX_AGENT_CONCURRENCY,
    MAX_ID,
    MAX_INT32,
    MAX_LIST_LIMIT,
    MAX_TIMING_S,
    age,
    agent_labels,
    agent_name,
    byte_size,
    duration_in,
    float_in,
    int_in,
    printable,
)
from conveyor.cli.client import CliError

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line naming the flag, exit 2; `--help` still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


BUILD_ID = int_in(1, MAX_ID)
CA_HELP = (
    "verify the coordinator's TLS certificate against this CA (default: $CONVEYOR_CA, else, "
    "for the local server, the ~/.conveyor/server/tls/ca.pem it made; without one, plaintext)"
)


def _client_options() -> _Parser:
    common = _Parser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="coordinator address (default: $CONVEYOR_ADDR, else the local server)",
    )
    tokens = group.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        help="client token (default: $CONVEYOR_TOKEN, else the local "
        "server's ~/.conveyor/server/client-token); --token-file keeps it off the command line",
    )
    tokens.add_argument("--token-file", metavar="FILE", help="read the client token from FILE")
    group.add_argument("--ca", metavar="FILE", help=CA_HELP)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    return common


def _side(module: str) -> Handler:
    """`server` and `agent` live in their own packages; import them only when asked for."""

    def run(args: argparse.Namespace) -> int:
        handler: Handler = importlib.import_module(module).run
        return handler(args)

    return run


def _add_server(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "server",
        help="run the coordinator",
        description="Run the coordinator: keeps builds, schedules jobs on agents.",
    )
    p.add_argument(
        "--listen",
        default="127.0.0.1:7420",
        metavar="HOST:PORT",
        help="address to serve on (default: %(default)s; port 0 picks a free one)",
    )
    p.add_argument(
        "--http",
        default="127.0.0.1:7421",
        metavar="HOST:PORT|off",
        help="HTTP address of the REST API, metrics and health (default: %(default)s; port 0 "
        "picks a free one, written to DATA_DIR/http.addr; off: none)",
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="state, logs and tokens (default: ~/.conveyor/server)"
    )
    p.add_argument(
        "--db",
        metavar="URL",
        help="database: sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        "(default: SQLite file in the data dir)",
    )
    _add_server_tokens(p)
    _add_server_tls(p)
    tuning = p.add_argument_group("timing (seconds; short values are for tests)")
    seconds = float_in(0.01, MAX_TIMING_S)
    tuning.add_argument(
        "--lease-ttl", type=seconds, help="lease lifetime without renewal (default 30)"
    )
    tuning.add_argument(
        "--renew-interval", type=seconds, help="how often agents renew (default 10)"
    )
    tuning.add_argument(
        "--reaper-period", type=seconds, help="how often expired leases are reaped (default 2)"
    )
    tuning.add_argument("--poll-timeout", type=seconds, help="long-poll length (default 30)")
    tuning.add_argument(
        "--notify-backoff-max",
        type=duration_in(1, 86400),
        metavar="DURATION",
        help="longest wait between tries of a notification (like 5m, 1h; default 5m)",
    )
    tuning.add_argument(
        "--notify-backoff-initial",
        type=seconds,
        help="the first wait after a failed notification (default 1)",
    )
    limits = p.add_argument_group("limits (sizes like 512KiB, 100MiB, 2GiB)")
    limits.add_argument("--max-artifact-size", metavar="SIZE", help="one artifact file (4GiB)")
    limits.add_argument(
        "--max-build-artifacts-size", metavar="SIZE", help="all artifacts of a build (20GiB)"
    )
    limits.add_argument("--max-source-size", metavar="SIZE", help="one source snapshot (2GiB)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=_side("coordinator.main"))


def _add_server_tokens(p: _Parser) -> None:
    for name, what, env in (
        ("agent", "the join token agents must present", "CONVEYOR_AGENT_TOKEN"),
        ("client", "the token the CLI must present", "CONVEYOR_CLIENT_TOKEN"),
    ):
        tokens = p.add_mutually_exclusive_group()
        tokens.add_argument(
            f"--{name}-token",
            help=f"{what} (default: ${env}, else generated into the data dir)",
        )
        tokens.add_argument(f"--{name}-token-file", metavar="FILE", help=f"read {what} from FILE")


def _add_server_tls(p: _Parser) -> None:
    tls = p.add_argument_group("TLS (default: off, plaintext)")
    tls.add_argument(
        "--tls",
        choices=("auto", "off"),
        default="off",
        help="'auto': serve TLS with a certificate from a private CA made in the data dir "
        "(once, then kept; agents and clients elsewhere take DATA_DIR/tls/ca.pem as --ca)",
    )
    tls.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this PEM certificate")
    tls.add_argument("--tls-key", metavar="FILE", help="... and this PEM private key")


def _add_agent(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "agent",
        help="run an agent that takes jobs and runs their steps in Docker (or on the host)",
        description="Run an agent: registers with the coordinator, takes jobs "
        "whose labels it carries, runs each step in a container (or, with --executor shell, "
        "as an unisolated process on this host). The first SIGTERM (or Ctrl-C) "
        "drains it: no new work, running jobs finish, then it exits 0. A second one stops the "
        "running steps (SIGTERM, grace, SIGKILL); their attempts end agent_stopped.",
    )
    _add_agent_connection(p)
    p.add_argument(
        "--name",
        type=agent_name,
        help="agent name, unique per coordinator (default: host name)",
    )
    p.add_argument(
        "--labels",
        default="",
        type=agent_labels,
        metavar="k=v,...",
        help="labels jobs can ask for (values without ',' or '=')",
    )
    p.add_argument(
        "--concurrency",
        type=int_in(1, MAX_AGENT_CONCURRENCY),
        default=1,
        metavar="N",
        help=f"jobs run at once (default 1, at most {MAX_AGENT_CONCURRENCY})",
    )
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics on /metrics there (port 0 picks one, written to "
        "WORK_DIR/metrics.addr; default: none)",
    )
    p.add_argument(
        "--work-dir",
        metavar="DIR",
        help="spool for logs, the agent's credential, and workspaces with --executor shell "
        "(default: ~/.conveyor/agent-NAME); one agent per work dir",
    )
    p.add_argument(
        "--executor",
        choices=("docker", "shell", "fake"),
        default="docker",
        help="how steps run: 'docker' (default) runs each step in a fresh container; 'shell' "
        "runs each step as a plain process on this host, as this agent's user, UNISOLATED: it "
        "sees the host's files, network and processes and ignores the step's image; such an "
        "agent carries the label executor=shell and takes only jobs whose labels ask for it; "
        "'fake' "
        "runs nothing and only simulates a few sh commands (echo, sleep, exit...): for testing "
        "the farm itself",
    )
    p.add_argument(
        "--allow-local-git",
        action="store_true",
        help="let a git source be a path or file:// URL on this host (off by default: a "
        "pipeline could then read any repository the agent's user can)",
    )
    p.add_argument(
        "--spool-limit",
        type=float_in(0, 1024**2),
        default=1024,
        metavar="MB",
        help="log bytes per step kept on disk while the coordinator is unreachable (default 1024)",
    )
    p.add_argument(
        "--stop-grace",
        type=float_in(0, MAX_TIMING_S),
        default=3.0,
        metavar="SECONDS",
        help="SIGTERM-to-SIGKILL delay when a step is canceled (default 3)",
    )
    _add_isolation(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=_side("agent.main"))


def _add_agent_connection(p: _Parser) -> None:
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="coordinator address (default: $CONVEYOR_ADDR, else the local server)",
    )
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        help="join token (default: $CONVEYOR_AGENT_TOKEN, else the local server's "
        "~/.conveyor/server/agent-token)",
    )
    tokens.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the join token from FILE (e.g. a copy of the "
        "server's agent-token), which keeps it off the command line",
    )
    p.add_argument("--ca", metavar="FILE", help=CA_HELP)


# Bounds of the isolation flags: Docker's own smallest memory, far past any machine's largest.
MIN_STEP_MEMORY = 6 * 1024**2
MAX_STEP_MEMORY = 1024**5
MAX_STEP_PIDS = 4 * 1024**2


def _add_isolation(p: _Parser) -> None:
    group = p.add_argument_group("step isolation (Docker executor)")
    group.add_argument(
        "--memory",
        type=byte_size(MIN_STEP_MEMORY, MAX_STEP_MEMORY),
        metavar="SIZE",
        help="memory of each step container, swap included, e.g. 2g (default: 4g, or the "
        "host's memory divided by --concurrency if less); a step past it ends oom_killed",
    )
    group.add_argument(
        "--cpus",
        type=float_in(0.01, 4096),
        metavar="N",
        help="CPUs each step container may use, e.g. 1.5 (default: the host's CPUs less half "
        "a CPU, kept for the agent and the engine)",
    )
    group.add_argument(
        "--pids-limit",
        type=int_in(16, MAX_STEP_PIDS),
        default=4096,
        metavar="N",
        help="processes and threads a step container may hold at once (default 4096)",
    )
    group.add_argument(
        "--network",
        choices=("per-attempt", "bridge", "none"),
        default="per-attempt",
        help="step containers' network: 'per-attempt' (default) gives each attempt its own "
        "bridge network, so jobs on one host cannot reach each other; 'bridge' is Docker's "
        "shared default network; 'none' leaves steps without a network",
    )
    group.add_argument(
        "--allow-privileged",
        action="store_true",
        help="run the steps of jobs that ask for it (privileged: true) as privileged "
        "containers, which are root on this host; off by default (such jobs then wait for "
        "an agent that allows it)",
    )


def _add_client_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    common = _client_options()
    p = sub.add_parser(
        "run",
        parents=[common],
        help="submit a pipeline and follow it",
        description="Submit PIPELINE.yml, follow it live, exit 0 if it succeeded, "
        "1 if it failed or was canceled, 2 for invalid input.",
    )
    p.add_argument("pipeline", metavar="PIPELINE.yml")
    p.add_argument("--env", action="append", metavar="K=V", help="override a build env variable")
    p.add_argument(
        "--source",
        metavar="DIR",
        help="upload DIR (minus .gitignore/.conveyorignore matches and .git) as the workspace",
    )
    p.add_argument("--git", metavar="URL", help="check out this git repository in every job")
    p.add_argument("--ref", metavar="REF", help="branch, tag or commit for --git (default HEAD)")
    p.add_argument(
        "--branch", metavar="NAME", help="the branch a --source directory is, for `when:`"
    )
    p.add_argument("--no-follow", action="store_true", help="print the build id and return")
    p.set_defaults(handler=commands.cmd_run)

    p = sub.add_parser("builds", parents=[common], help="list recent builds")
    p.add_argument(
        "--limit",
        type=int_in(1, MAX_LIST_LIMIT),
        default=20,
        help=f"how many (default 20, at most {MAX_LIST_LIMIT})",
    )
    p.set_defaults(handler=commands.cmd_builds)

    p = sub.add_parser("show", parents=[common], help="show a build, its jobs and why they wait")
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.set_defaults(handler=commands.cmd_show)

    p = sub.add_parser("logs", parents=[common], help="print a job's log bytes")
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--step", metavar="NAME", help="only this step (default: all, in order)")
    p.add_argument(
        "--attempt",
        type=int_in(0, MAX_INT32),
        default=0,
        metavar="N",
        help="attempt number (default: latest)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the steps end")
    p.set_defaults(handler=commands.cmd_logs)

    p = sub.add_parser("cancel", parents=[common], help="cancel a build")
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.set_defaults(handler=commands.cmd_cancel)

    p = sub.add_parser("retry", parents=[common], help="re-run a build's failed jobs, or one job")
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("job", nargs="?", metavar="JOB", help="only this job (and what needs it)")
    p.add_argument("--follow", action="store_true", help="follow the build until it ends")
    p.set_defaults(handler=commands.cmd_retry)

    p = sub.add_parser(
        "agents",
        parents=[common],
        help="list agents, or revoke one",
        description="List agents. `conveyor agents revoke NAME` (admin) ends an agent for good: "
        "its credential stops working at once, what it runs is lost (and retried per the "
        "job's rule), and its name is not taken again.",
    )
    p.add_argument("action", nargs="?", choices=("revoke",), help="revoke the agent NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="the agent to revoke")
    p.set_defaults(handler=commands.cmd_agents)
    _add_artifact_commands(sub, common)
    _add_gate_commands(sub, common)
    delivery.add_commands(sub, common)
    rollback_command.add_command(sub, common)
    dora_command.add_command(sub, common)
    access_commands.add_commands(sub, common)
    secret_commands.add_commands(sub, common)
    notify_commands.add_commands(sub, common)
    repo_commands.add_commands(sub, common)


def _add_gate_commands(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    for verb, handler, outcome in (
        ("approve", gate_commands.cmd_approve, "it succeeds and what needs it runs"),
        ("reject", gate_commands.cmd_reject, "it fails and what needs it is skipped"),
    ):
        p = sub.add_parser(
            verb,
            parents=[common],
            help=f"{verb} a build's approval gate",
            description=f"{verb.capitalize()} the approval gate JOB of BUILD: {outcome}. "
            "A gate is decided once.",
        )
        p.add_argument("build", type=BUILD_ID, metavar="BUILD")
        p.add_argument("job", metavar="JOB")
        p.add_argument("--comment", metavar="TEXT", help="recorded with the decision")
        p.set_defaults(handler=handler)


def _add_artifact_commands(sub: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    p = sub.add_parser("artifacts", parents=[common], help="list or download a build's artifacts")
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("--download", metavar="DIR", help="write them to DIR/JOB/NAME, verified")
    p.add_argument("--job", help="only this job's artifacts")
    p.add_argument("--name", help="only the artifact with this name")
    p.set_defaults(handler=artifact_commands.cmd_artifacts)

    p = sub.add_parser(
        "gc",
        parents=[common],
        help="remove old builds' artifacts and sources",
        description="Remove artifacts and sources of builds older than --older-than, except "
        "the newest build's; content another kept build uses stays.",
    )
    p.add_argument(
        "--older-than", required=True, type=age, metavar="AGE", help="e.g. 7d, 12h, 30m, 0s"
    )
    p.set_defaults(handler=artifact_commands.cmd_gc)

    for verb, text in (
        ("pause", "stop giving an agent new work (running jobs go on)"),
        ("resume", "give a paused or draining agent work again"),
        ("drain", "stop giving an agent new work; it exits once its jobs end"),
    ):
        p = sub.add_parser(verb, parents=[common], help=text, description=text)
        p.add_argument("agent", metavar="AGENT", help="the agent's name")
        p.set_defaults(handler=commands.cmd_agent_mode)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="conveyor",
        description="Conveyor: a build farm. Start a coordinator with `conveyor server`, agents "
        "with `conveyor agent`, and run pipelines with `conveyor run`.",
    )
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_server(sub)
    _add_agent(sub)
    _add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except CliError as error:
        # One problem a line (a pipeline's issues); each line printed inert.
        lines = (printable(line) for line in str(error).split("\n"))
        print("conveyor: " + "\n".join(lines), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
