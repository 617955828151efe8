"""The build commands' arguments: run, builds, show, logs, cancel, retry, agents, artifacts, gc,
pause/resume/drain, approve/reject. Handlers are imported when their command is chosen."""

from __future__ import annotations

from conveyor.cli.bounds import (
    AUTO_ALL_MAX_RUNNING_JOBS,
    MAX_INT32,
    MAX_LIST_LIMIT,
    age,
    build_states,
    int_in,
)
from conveyor.cli.parsing import BUILD_ID, Lazy, Parser, Sub

_PAUSE = (
    "Stop giving AGENT new work; the jobs it runs go on, and it stays paused across its "
    "restarts until `conveyor resume AGENT` (admin)."
)
_RESUME = "Give a paused or draining AGENT work again (admin)."
_DRAIN = (
    "Stop giving AGENT new work; it exits once the jobs it runs end, and shows offline (admin)."
)


def add_commands(sub: Sub[Parser], common: Parser) -> None:
    """The build commands, in the order `--help` lists them."""
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
    add_view_options(p)
    p.set_defaults(handler=Lazy("conveyor.cli.run_command:cmd_run"))

    p = sub.add_parser(
        "builds",
        parents=[common],
        help="list recent builds",
        description="List builds, newest first; the coordinator applies the filters, so "
        "--limit counts the builds that pass them.",
    )
    p.add_argument(
        "--limit",
        type=int_in(1, MAX_LIST_LIMIT),
        default=20,
        metavar="N",
        help=f"how many (default 20, at most {MAX_LIST_LIMIT})",
    )
    p.add_argument(
        "--status",
        type=build_states,
        action="append",
        default=[],
        metavar="STATE",
        help="only builds in this state (queued, running, succeeded, failed, canceled); "
        "repeat it or give a comma list",
    )
    p.add_argument("--name", metavar="NAME", help="only builds of the pipeline named NAME")
    p.add_argument("--branch", metavar="NAME", help="only builds of branch NAME")
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_builds"))

    p = sub.add_parser(
        "show",
        parents=[common],
        help="show a build, its jobs and why they wait",
        description="Show BUILD: its state, what started it, and each job's state, attempts, "
        "exit code, agent, time and, for a job that waits, what it waits for.",
    )
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow the build live until it ends (exit 0 if it succeeded, else 1), as run does",
    )
    add_view_options(p)
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_show"))

    p = sub.add_parser(
        "logs",
        parents=[common],
        help="print a job's log bytes",
        description="Print the log bytes of JOB's steps in BUILD, exactly as stored, in step "
        "order. --json prints one document instead: the attempt and its steps, each with its "
        "log as text (UTF-8; `exact` is false where bytes were replaced); --follow keeps "
        "printing until the steps end (not with --json).",
    )
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--step", metavar="NAME", help="only this step (default: all, in order)")
    p.add_argument(
        "--attempt",
        type=int_in(1, MAX_INT32),
        default=0,
        metavar="N",
        help="attempt number (default: latest)",
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the steps end")
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_logs"))

    p = sub.add_parser(
        "cancel",
        parents=[common],
        help="cancel a build",
        description="Cancel BUILD: jobs not started are canceled, running steps get SIGTERM, a "
        "grace period, then SIGKILL. Exit 0 when it is canceled or being canceled, 1 when it "
        "had already ended otherwise.",
    )
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_cancel"))

    p = sub.add_parser(
        "retry",
        parents=[common],
        help="re-run a build's failed jobs, or one job",
        description="Start new attempts of BUILD's unsuccessful jobs (or of JOB alone) and of "
        "the jobs that need them; earlier attempts stay in the history.",
    )
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("job", nargs="?", metavar="JOB", help="only this job (and what needs it)")
    p.add_argument("--follow", action="store_true", help="follow the build until it ends")
    add_view_options(p)
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_retry"))

    p = sub.add_parser(
        "agents",
        parents=[common],
        help="list agents, or revoke one",
        description="List agents. `conveyor agents revoke NAME` (admin) ends an agent for good: "
        "its credential stops working at once, what it runs is lost (and retried per the "
        "job's rule), and its name is not taken again.",
    )
    p.add_argument(
        "action", nargs="?", choices=("revoke",), metavar="revoke", help="revoke the agent NAME"
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the agent to revoke")
    p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_agents"))
    _add_artifact_commands(sub, common)
    _add_gate_commands(sub, common)


def add_view_options(p: Parser) -> None:
    """How a followed build shows: `run`, `retry --follow`, `show --follow`, `rollback`."""
    group = p.add_argument_group("following a build")
    group.add_argument(
        "--logs",
        choices=("all", "failed", "none"),
        help="which steps' log lines to print: all; failed (a step's lines only if it fails, "
        "else one line that counts them); none (states only). Default: all, except on a "
        f"terminal while more than {AUTO_ALL_MAX_RUNNING_JOBS} jobs run at once (then failed)",
    )
    group.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours: auto (on a terminal, unless NO_COLOR is set), always or never. On a "
        "terminal the jobs' summary is redrawn below the log lines; piped, plain lines",
    )


def _add_gate_commands(sub: Sub[Parser], common: Parser) -> None:
    for verb, outcome in (
        ("approve", "it succeeds and what needs it runs"),
        ("reject", "it fails and what needs it is skipped"),
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
        p.set_defaults(handler=Lazy(f"conveyor.cli.gate_commands:cmd_{verb}"))


def _add_artifact_commands(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "artifacts",
        parents=[common],
        help="list or download a build's artifacts",
        description="List BUILD's source and artifacts (job, name, size, sha256), or with "
        "--download write them to DIR/JOB/NAME, each digest verified, never outside DIR.",
    )
    p.add_argument("build", type=BUILD_ID, metavar="BUILD")
    p.add_argument("--download", metavar="DIR", help="write them to DIR/JOB/NAME, verified")
    p.add_argument("--job", metavar="JOB", help="only this job's artifacts")
    p.add_argument("--name", metavar="NAME", help="only the artifact with this name")
    p.set_defaults(handler=Lazy("conveyor.cli.artifact_commands:cmd_artifacts"))

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
    p.set_defaults(handler=Lazy("conveyor.cli.artifact_commands:cmd_gc"))

    for verb, text, more in (
        ("pause", "stop giving an agent new work (running jobs go on)", _PAUSE),
        ("resume", "give a paused or draining agent work again", _RESUME),
        ("drain", "stop giving an agent new work; it exits once its jobs end", _DRAIN),
    ):
        p = sub.add_parser(verb, parents=[common], help=text, description=more)
        p.add_argument("agent", metavar="AGENT", help="the agent's name")
        p.set_defaults(handler=Lazy("conveyor.cli.commands:cmd_agent_mode"))
