"""The commands that need no coordinator: `lint` (validate files) and `exec` (run a pipeline on
this machine). Handlers are imported when their command is chosen."""

from __future__ import annotations

from conveyor.cli.parser_builds import add_view_options
from conveyor.cli.parsing import Lazy, Parser, Sub


def add_commands(sub: Sub[Parser]) -> None:
    p = sub.add_parser(
        "lint",
        help="validate pipeline files offline",
        description="Validate each PIPELINE.yml as a coordinator would, without one: every "
        "problem of every file, one `FILE:LINE:COLUMN: PATH: problem` line each. Exit 0 when "
        "all are valid (one OK line per file), 2 otherwise.",
    )
    p.add_argument("pipelines", nargs="+", metavar="PIPELINE.yml")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON list: {"file", "valid", "name", "jobs", "problems": '
        '[{"line", "column", "path", "message"}]} per file',
    )
    p.set_defaults(handler=Lazy("conveyor.cli.lint_command:cmd_lint"))
    add_exec(sub)


def add_exec(sub: Sub[Parser]) -> None:
    p = sub.add_parser(
        "exec",
        help="run a pipeline on this machine, without a coordinator",
        description="Run PIPELINE.yml on this machine, for trying it before pushing it: no "
        "coordinator and no agent process; its jobs run one at a time in `needs` order through "
        "the agent's own code (executors, workspaces, artifacts passed between jobs, step "
        "environment), with the output and exit codes of `conveyor run` (0 succeeded, 1 failed, "
        "2 invalid input, nothing run; 130 after Ctrl-C, which stops the running step). The "
        "build is a manual one on no branch: a job whose `when:` names branches or tags is "
        "skipped. Approval gates cannot be approved here: a pipeline with one is refused unless "
        "--approve-all. Secrets come from --secret NAME=VALUE.",
    )
    p.add_argument("pipeline", metavar="PIPELINE.yml")
    p.add_argument(
        "--source",
        metavar="DIR",
        help="DIR (minus .gitignore/.conveyorignore matches and .git) as each job's workspace",
    )
    p.add_argument(
        "--job",
        action="append",
        metavar="NAME",
        help="run only this job and what it needs (repeatable; default: every job)",
    )
    p.add_argument(
        "--executor",
        choices=("docker", "shell"),
        default="docker",
        help="'docker' (default): each step in a fresh container; 'shell': each step as a "
        "plain process on this host, unisolated, ignoring images",
    )
    p.add_argument("--env", action="append", metavar="K=V", help="override a build env variable")
    p.add_argument(
        "--secret",
        action="append",
        metavar="NAME=VALUE",
        help="the value of a secret a job names (masked in its output; required for each)",
    )
    p.add_argument(
        "--approve-all", action="store_true", help="take every approval gate as approved"
    )
    p.add_argument(
        "--default-image",
        metavar="IMAGE",
        default="conveyor/busybox",
        help="image of the steps that name none, as an agent's --default-image (default: "
        "%(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print the build's JSON document at the end")
    p.add_argument("-v", "--verbose", action="store_true", help="the agent code's own logging too")
    add_view_options(p)
    p.set_defaults(handler=Lazy("agent.local.command:cmd_exec"))
