"""The operators' commands: `server` and `agent` (their code lives in their own packages)."""

from __future__ import annotations

from conveyor.cli.bounds import (
    MAX_AGENT_CONCURRENCY,
    MAX_TIMING_S,
    agent_labels,
    agent_name,
    byte_size,
    duration_in,
    float_in,
    int_in,
)
from conveyor.cli.parsing import CA_HELP, Lazy, Parser, Sub


def add_server(sub: Sub[Parser]) -> None:
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
        "--lease-ttl", type=seconds, metavar="S", help="lease lifetime without renewal (default 30)"
    )
    tuning.add_argument(
        "--renew-interval", type=seconds, metavar="S", help="how often agents renew (default 10)"
    )
    tuning.add_argument(
        "--reaper-period",
        type=seconds,
        metavar="S",
        help="how often expired leases are reaped (default 2)",
    )
    tuning.add_argument(
        "--poll-timeout", type=seconds, metavar="S", help="long-poll length (default 30)"
    )
    tuning.add_argument(
        "--notify-backoff-max",
        type=duration_in(1, 86400),
        metavar="DURATION",
        help="longest wait between tries of a notification (like 5m, 1h; default 5m)",
    )
    tuning.add_argument(
        "--notify-backoff-initial",
        type=seconds,
        metavar="S",
        help="the first wait after a failed notification (default 1)",
    )
    limits = p.add_argument_group("limits (sizes like 512KiB, 100MiB, 2GiB)")
    limits.add_argument("--max-artifact-size", metavar="SIZE", help="one artifact file (4GiB)")
    limits.add_argument(
        "--max-build-artifacts-size", metavar="SIZE", help="all artifacts of a build (20GiB)"
    )
    limits.add_argument("--max-source-size", metavar="SIZE", help="one source snapshot (2GiB)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=Lazy("coordinator.main:run"))


def _add_server_tokens(p: Parser) -> None:
    for name, what, env in (
        ("agent", "the join token agents must present", "CONVEYOR_AGENT_TOKEN"),
        ("client", "the token the CLI must present", "CONVEYOR_CLIENT_TOKEN"),
    ):
        tokens = p.add_mutually_exclusive_group()
        tokens.add_argument(
            f"--{name}-token",
            metavar="TOKEN",
            help=f"{what} (default: ${env}, else generated into the data dir)",
        )
        tokens.add_argument(f"--{name}-token-file", metavar="FILE", help=f"read {what} from FILE")


def _add_server_tls(p: Parser) -> None:
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


def add_agent(sub: Sub[Parser]) -> None:
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
        metavar="NAME",
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
        "--default-image",
        metavar="IMAGE",
        help="image of the steps whose pipeline, job and step name none (default: "
        "conveyor/busybox; Docker executor only, the shell executor needs none); their log "
        "says it was used",
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
    p.set_defaults(handler=Lazy("agent.main:run"))


def _add_agent_connection(p: Parser) -> None:
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="coordinator address (default: $CONVEYOR_ADDR, else the local server)",
    )
    tokens = p.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        metavar="TOKEN",
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
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the address, join token and CA that `conveyor server --data-dir DIR` keeps there "
        "(on the server's machine; the flags above and the environment come first)",
    )


# Bounds of the isolation flags: Docker's own smallest memory, far past any machine's largest.
MIN_STEP_MEMORY = 6 * 1024**2
MAX_STEP_MEMORY = 1024**5
MAX_STEP_PIDS = 4 * 1024**2


def _add_isolation(p: Parser) -> None:
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
