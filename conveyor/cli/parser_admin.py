"""The delivery and administration commands' arguments: envs, deployments, rollback, dora,
token, audit, secret, notify, repo. Handlers are imported when their command is chosen."""

from __future__ import annotations

import argparse

from conveyor.cli.bounds import MAX_LIST_LIMIT, int_in
from conveyor.cli.parser_builds import add_view_options
from conveyor.cli.parsing import Lazy, Parser, Sub

ROLES = ("viewer", "developer", "deployer", "admin")
MAX_AUDIT_LIMIT = 10_000  # the coordinator's cap too
DEFAULT_SINCE = "30d"
EVENTS = ("build", "deployment", "gate")
MAX_ROW_ID = 2**31 - 1  # the coordinator's bound on ids too
# Checked in the commands' own modules (some by the pipeline's rules, which are large):
# imported only when one of those commands is chosen.
ENVIRONMENT_NAME = Lazy("conveyor.cli.delivery:environment_name")
SECRET_NAME = Lazy("conveyor.cli.secret_commands:secret_name")
REPO_NAME = Lazy("conveyor.cli.repo_commands:repo_name")
POLL_INTERVAL = Lazy("conveyor.cli.repo_commands:poll_interval")


def add_commands(sub: Sub[Parser], common: Parser) -> None:
    """The commands, in the order `--help` lists them."""
    for add in (
        _add_delivery,
        _add_rollback,
        _add_dora,
        _add_access,
        _add_secrets,
        _add_notify,
        _add_repos,
    ):
        add(sub, common)


def deployment_id(text: str) -> int:
    if not text.isdigit() or int(text) < 1 or int(text) > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"invalid deployment id {text!r} (a positive number)")
    return int(text)


def event_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in EVENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown event {unknown[0]!r}" if unknown else "no event named"
        )
    return names


def _add_delivery(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "envs",
        parents=[common],
        help="list environments and what each runs now",
        description="List the environments pipelines deploy to: for each, the build and commit it "
        "runs now, when that was deployed, and its url.",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.delivery:cmd_envs"))
    p = sub.add_parser(
        "deployments",
        parents=[common],
        help="an environment's deployments",
        description="List ENV's deployments, newest first: build, job, state, commit, rollbacks "
        "and "
        "who started each.",
    )
    p.add_argument("environment", type=ENVIRONMENT_NAME, metavar="ENV")
    p.add_argument(
        "--limit",
        type=int_in(1, MAX_LIST_LIMIT),
        default=20,
        metavar="N",
        help=f"how many, newest first (default 20, at most {MAX_LIST_LIMIT})",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.delivery:cmd_deployments"))


def _add_rollback(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="deploy an earlier deployment's commit and artifacts again (nothing is rebuilt)",
        description=(
            "Starts a build that runs only the deployment job of an earlier deployment of ENV, "
            "with its recorded pipeline, commit and artifacts (by digest), and follows it like "
            "`conveyor run`. Default: the last successful deployment before the current one that "
            "deployed something else."
        ),
    )
    p.add_argument("environment", type=ENVIRONMENT_NAME, metavar="ENV")
    p.add_argument(
        "--to",
        type=deployment_id,
        metavar="DEPLOYMENT",
        help="the id of the deployment to deploy again (see `conveyor deployments ENV`)",
    )
    p.add_argument("--no-follow", action="store_true", help="return once the build is queued")
    add_view_options(p)
    p.set_defaults(handler=Lazy("conveyor.cli.rollback_command:cmd_rollback"))


def _add_dora(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "dora",
        parents=[common],
        help="delivery figures: deployment frequency, lead time, failure rate, time to restore",
        description="The four delivery figures (DORA) over a window ending now, computed from "
        "the recorded deployments of one environment or of all.",
    )
    p.add_argument("--env", type=ENVIRONMENT_NAME, metavar="ENV", help="only this environment")
    p.add_argument(
        "--since",
        type=Lazy("conveyor.cli.dora_view:since"),
        default=DEFAULT_SINCE,  # a string default goes through `type` too
        metavar="AGE",
        help=f"the window, back from now (default {DEFAULT_SINCE})",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.dora_command:cmd_dora"))


def _add_access(sub: Sub[Parser], common: Parser) -> None:
    token = sub.add_parser(
        "token",
        help="create, list or revoke named client tokens (admin)",
        description="Named client tokens, each with a role: viewer reads; developer also runs, "
        "cancels and retries; deployer also approves, rejects and rolls back; admin also "
        "manages agents, tokens, secrets, repositories and garbage collection.",
    )
    verbs = token.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser(
        "create",
        parents=[common],
        help="make a token; its secret is printed this once only",
        description="Make the client token NAME with --role; its secret is printed this once and "
        "only "
        "its SHA-256 is kept (admin).",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=ROLES)
    p.set_defaults(handler=Lazy("conveyor.cli.access_commands:cmd_token_create"))
    p = verbs.add_parser(
        "list",
        parents=[common],
        help="list tokens (never their secrets)",
        description="List client tokens with their role, when each was made and last used; never a "
        "secret.",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.access_commands:cmd_token_list"))
    p = verbs.add_parser(
        "revoke",
        parents=[common],
        help="refuse a token from now on",
        description="Revoke the client token NAME: it is refused from its next call on (admin).",
    )
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=Lazy("conveyor.cli.access_commands:cmd_token_revoke"))

    p = sub.add_parser(
        "audit",
        parents=[common],
        help="who changed what, and when",
        description="List the audit trail, newest first: every approval, rejection, rollback, "
        "cancel, "
        "secret and token change, with who and when.",
    )
    p.add_argument(
        "--limit",
        type=int_in(1, MAX_AUDIT_LIMIT),
        default=100,
        metavar="N",
        help=f"how many events, newest first (default 100, at most {MAX_AUDIT_LIMIT})",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.access_commands:cmd_audit"))


def _add_secrets(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "secret",
        help="set, list or remove secrets jobs name in `secrets:` (admin)",
        description="Secrets jobs name in `secrets: [NAME]` and get as environment variables, "
        "masked in their logs. Values are stored encrypted and never printed back.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser(
        "set",
        parents=[common],
        help="set a secret from stdin or --from-file",
        description="Set secret NAME to the value read from standard input (prompted for, "
        "without echo, on a terminal) or from --from-file; one trailing newline is dropped. "
        "With --env only deployment jobs of that environment get it, and they get it rather "
        "than an unscoped secret of the same name.",
    )
    s.add_argument("name", type=SECRET_NAME, metavar="NAME")
    s.add_argument("value", nargs="?", help=argparse.SUPPRESS)
    s.add_argument("--env", type=ENVIRONMENT_NAME, metavar="ENV", help="only for this environment")
    s.add_argument("--from-file", metavar="FILE", help="read the value from FILE")
    s.set_defaults(handler=Lazy("conveyor.cli.secret_commands:cmd_set"))
    s = verbs.add_parser(
        "list",
        parents=[common],
        help="list secrets (names, never values)",
        description="List secrets by name and environment, with when and by whom each was last "
        "set; "
        "never a value.",
    )
    s.set_defaults(handler=Lazy("conveyor.cli.secret_commands:cmd_list"))
    s = verbs.add_parser(
        "rm",
        parents=[common],
        help="remove a secret",
        description="Remove the secret NAME (for --env ENV only, if given); jobs that name it then "
        "fail to start (admin).",
    )
    s.add_argument("name", type=SECRET_NAME, metavar="NAME")
    s.add_argument("--env", type=ENVIRONMENT_NAME, metavar="ENV", help="the environment's own")
    s.set_defaults(handler=Lazy("conveyor.cli.secret_commands:cmd_rm"))


def _add_notify(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "notify",
        help="add, list or remove notification targets (admin)",
        description="Targets the coordinator POSTs events to: a build finished, a deployment "
        "finished, a gate waits for approval. Each event is kept until delivered (a 2xx "
        "answer), retried with backoff, in order per target, across restarts.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser(
        "add",
        parents=[common],
        help="add a webhook, or a forge's commit statuses",
        description="Add a webhook URL (JSON events, signed X-Conveyor-Signature: sha256=HEX "
        "with --secret/--secret-file; unsigned without), or with --commit-status OWNER/REPO "
        "a forge's API base (e.g. https://gitea.example/api/v1 or https://api.github.com) "
        "whose statuses API shows each build's result on its commit.",
    )
    s.add_argument("url", metavar="URL")
    s.add_argument(
        "--events",
        type=event_names,
        default=(),
        metavar="LIST",
        help="comma-separated: build,deployment,gate (default: all; commit statuses: build,gate)",
    )
    s.add_argument("--secret", metavar="S", help="HMAC secret (shows in process listings)")
    s.add_argument("--secret-file", metavar="FILE", help="read the HMAC secret from FILE")
    s.add_argument("--commit-status", metavar="OWNER/REPO", help="post commit statuses there")
    s.add_argument("--forge-token-file", metavar="FILE", help="the forge's API token")
    s.add_argument("--link", metavar="URL", help="statuses link URL/builds/ID (the web view)")
    s.set_defaults(handler=Lazy("conveyor.cli.notify_commands:cmd_add"))
    s = verbs.add_parser(
        "list",
        parents=[common],
        help="list targets and their deliveries",
        description="List notification targets with their events, delivered, pending and failed "
        "counts, last error and next try.",
    )
    s.set_defaults(handler=Lazy("conveyor.cli.notify_commands:cmd_list"))
    s = verbs.add_parser(
        "remove",
        parents=[common],
        help="remove a target and its events",
        description="Remove the notification target ID and the events still waiting for it "
        "(admin).",
    )
    s.add_argument("id", type=int_in(1, MAX_ROW_ID), metavar="ID")
    s.set_defaults(handler=Lazy("conveyor.cli.notify_commands:cmd_remove"))


def _add_repos(sub: Sub[Parser], common: Parser) -> None:
    p = sub.add_parser(
        "repo",
        help="add, list or remove watched repositories (admin)",
        description="Repositories the coordinator watches: each new commit on a branch or tag "
        "that the pipeline's `on:` accepts becomes a build of the pipeline file as it is in "
        "that commit. Polled on an interval, and checked at once on a webhook "
        "(POST /hooks/git/NAME on the HTTP listener).",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser(
        "add",
        parents=[common],
        help="watch a repository",
        description="Watch the repository at URL under NAME. Its current branches and tags are "
        "recorded and not built; what is pushed afterwards is.",
    )
    s.add_argument("name", type=REPO_NAME, metavar="NAME")
    s.add_argument("url", metavar="URL")
    s.add_argument("--pipeline", default="", metavar="PATH", help="default: .conveyor.yml")
    s.add_argument("--poll", type=POLL_INTERVAL, default=0.0, metavar="DURATION",
                   help="how often to poll, e.g. 30s, 5m (default 1m)")  # fmt: skip
    s.add_argument("--webhook-secret", default="", metavar="S",
                   help="the secret webhooks are signed with or carry")  # fmt: skip
    s.set_defaults(handler=Lazy("conveyor.cli.repo_commands:cmd_add"))
    s = verbs.add_parser(
        "list",
        parents=[common],
        help="list watched repositories",
        description="List watched repositories with their recorded heads, last check, next check "
        "and "
        "last error; never a webhook secret.",
    )
    s.set_defaults(handler=Lazy("conveyor.cli.repo_commands:cmd_list"))
    s = verbs.add_parser(
        "remove",
        parents=[common],
        help="stop watching a repository",
        description="Stop watching the repository NAME; its builds stay (admin).",
    )
    s.add_argument("name", type=REPO_NAME, metavar="NAME")
    s.set_defaults(handler=Lazy("conveyor.cli.repo_commands:cmd_remove"))
