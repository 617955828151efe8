"""`conveyor completion bash|zsh|fish`: a completion script generated from the parser itself.

What the parser says becomes the script's data: each command path ("logs", "token create"),
its subcommands, its flags and what their values are, its positional arguments. A value is
one of: `none` (the flag takes none), `value` (anything), `file`, `dir`, `words:A B`
(choices), or one asked for on the fly with `conveyor __complete`: `builds`, `jobs` (of the
BUILD given before it) and `contexts`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from conveyor.cli import completion_scripts
from conveyor.cli.errors import EXIT_OK
from conveyor.cli.parser import build_parser
from conveyor.cli.parsing import client_options

DYNAMIC = {"BUILD": "builds", "JOB": "jobs", "CONTEXT": "contexts"}
FILES = {"FILE", "F", "PIPELINE.yml", "PATH"}
DIRS = {"DIR"}


@dataclass
class Command:
    path: str  # "" for `conveyor` itself, else its words: "logs", "token create"
    help: str = ""
    subcommands: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # option string -> value kind
    positionals: list[str] = field(default_factory=list)  # value kinds, in order


def cmd_completion(args: argparse.Namespace) -> int:
    commands = walk(build_parser())
    print(completion_scripts.render(args.shell, commands, connection_flags()), end="")
    return EXIT_OK


def walk(parser: argparse.ArgumentParser, path: str = "", help_text: str = "") -> list[Command]:
    """Every command path under `parser`, itself first."""
    command = Command(path, help_text)
    found = [command]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                command.subcommands.append(name)
                found += walk(child, f"{path} {name}".strip(), str(helps.get(name, "")))
        elif action.option_strings:
            if action.help == argparse.SUPPRESS:
                continue
            kind = "none" if action.nargs == 0 else value_kind(action)
            for option in action.option_strings:
                command.flags[option] = kind
        elif action.help != argparse.SUPPRESS:
            command.positionals.append(value_kind(action))
    return found


def connection_flags() -> list[str]:
    """The flags `__complete` is given from the line, to ask the coordinator the command would."""
    return [
        option
        for action in client_options()._actions
        if action.nargs != 0
        for option in action.option_strings
    ]


def value_kind(action: argparse.Action) -> str:
    if action.choices is not None:
        return "words:" + " ".join(str(choice) for choice in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if action.dest == "context":
        return "contexts"
    if metavar in DYNAMIC:
        return DYNAMIC[metavar]
    if metavar in FILES or metavar.endswith((".yml", "FILE")):
        return "file"
    if metavar in DIRS or metavar.endswith("DIR"):
        return "dir"
    return "value"
