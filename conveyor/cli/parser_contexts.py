"""The arguments of `conveyor context ...` (the config file's named coordinators) and of
`conveyor completion SHELL`. Handlers are imported when their command is chosen."""

from __future__ import annotations

from conveyor.cli.parsing import CONNECTION_HELP, Lazy, Parser, Sub

_CONTEXTS = "conveyor.cli.context_commands"
SHELLS = ("bash", "zsh", "fish")


def add_commands(sub: Sub[Parser]) -> None:
    _add_contexts(sub)
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="Print the script that makes SHELL complete conveyor's commands, flags, "
        "build ids and job names (these from the coordinator, given up on after a second). "
        "Load it with `source <(conveyor completion bash)` in ~/.bashrc, "
        "`source <(conveyor completion zsh)` in ~/.zshrc (after compinit), or "
        "`conveyor completion fish | source` in ~/.config/fish/config.fish.",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(handler=Lazy("conveyor.cli.completion:cmd_completion"))


def _add_contexts(sub: Sub[Parser]) -> None:
    p = sub.add_parser(
        "context",
        help="add, use, list or remove named coordinators (contexts)",
        description="Contexts name coordinators in the config file "
        "($CONVEYOR_CONFIG, else $XDG_CONFIG_HOME/conveyor/config.toml, else "
        "~/.config/conveyor/config.toml): an address, a token file and a CA each; one is "
        "current. A context keeps the token file's path, never the token: the config is "
        "copied and shared more than a secret should be, and the token file keeps its own "
        f"permissions and can be replaced alone. {CONNECTION_HELP}",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser(
        "add",
        help="add (or replace) a context",
        description="Add context NAME, or replace the one of that name. The token file and "
        "the CA are checked now and kept as absolute paths.",
    )
    s.add_argument("name", metavar="NAME")
    s.add_argument("--coordinator", required=True, metavar="HOST:PORT", help="its address")
    s.add_argument("--token-file", metavar="FILE", help="the file its client token is read from")
    s.add_argument("--ca", metavar="FILE", help="the CA that verifies its TLS certificate")
    s.add_argument("--use", action="store_true", help="make it the current context")
    s.set_defaults(handler=Lazy(f"{_CONTEXTS}:cmd_add"))
    s = verbs.add_parser(
        "use",
        help="make a context the current one",
        description="Make CONTEXT the current one: client commands that name no coordinator "
        "(by flag, environment or --context) use it from now on.",
    )
    s.add_argument("name", metavar="CONTEXT")
    s.set_defaults(handler=Lazy(f"{_CONTEXTS}:cmd_use"))
    s = verbs.add_parser(
        "list",
        help="list contexts, the current one marked *",
        description="List the config file's contexts: name, coordinator, token file and CA, "
        "the current one marked *.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(handler=Lazy(f"{_CONTEXTS}:cmd_list"))
    s = verbs.add_parser(
        "remove",
        help="remove a context",
        description="Remove CONTEXT from the config file (its token file and CA stay where "
        "they are); if it was the current one, no context is current after.",
    )
    s.add_argument("name", metavar="CONTEXT")
    s.set_defaults(handler=Lazy(f"{_CONTEXTS}:cmd_remove"))
