"""What the `conveyor` argument parser is built from, without any command's implementation.

Every command's handler (and every argument type that needs more than this package's light
modules) is named as `module:function` and imported only once that command is chosen: a
command then loads gRPC, the pipeline parser or rich only if it uses them, and `--help` stays
complete because the parser itself is all here.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from conveyor.cli.bounds import MAX_ID, int_in

Sub = argparse._SubParsersAction  # the object `add_subparsers` returns
# The width of the formatters that lay nothing out (see `Parser.add_argument`).
_CHECK_WIDTH = 80


class Parser(argparse.ArgumentParser):
    """Usage errors in one line naming the flag, exit 2; `--help` still shows the usage."""

    _checking = False

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")

    # argparse makes a formatter to check each argument's metavar, and one to name the commands
    # of `add_subparsers` ("conveyor token"); each asks the terminal's width, importing shutil
    # (and its bz2 and lzma) for it: a cost every command line paid, help or not, for a width
    # that a check lays nothing out with and a short name never meets. Help, usage and error
    # messages still get the terminal's.
    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def add_subparsers(self, **kwargs: Any) -> Any:
        self._checking = True
        try:
            return super().add_subparsers(**kwargs)
        finally:
            self._checking = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        if self._checking:
            return self.formatter_class(prog=self.prog, width=_CHECK_WIDTH)  # type: ignore[call-arg]
        return super()._get_formatter()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # No parser above a command takes what follows the command's name: what this one
        # leaves is unknown here, and this command's --help is the one that says what it takes.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class Lazy:
    """The function `module:name` (a handler or an argument type), imported on its first call."""

    def __init__(self, target: str) -> None:
        self.module, _, self.name = target.partition(":")
        # argparse names a type by its __name__ in "invalid NAME value" messages.
        self.__name__ = self.name

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)

    def resolve(self) -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(importlib.import_module(self.module), self.name)
        return function


class _Skipped:
    """Stands in for the parser of a command the command line does not choose: it takes that
    command's arguments and drops them, so a command pays only for its own parser."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return self._drop

    def _drop(self, *args: object, **kwargs: object) -> _Skipped:
        return self


if TYPE_CHECKING:
    _Commands = argparse._SubParsersAction[Parser]
else:
    _Commands = argparse._SubParsersAction  # generic only in the stubs


class Commands(_Commands):
    """The commands: all listed (help, "invalid choice"), but with `chosen` set only that one's
    arguments are built; None builds every command's."""

    chosen: str | None = None

    def add_parser(self, name: str, **kwargs: Any) -> Parser:
        aliases: tuple[str, ...] = tuple(kwargs.get("aliases", ()))
        if self.chosen is None or self.chosen in (name, *aliases):
            return super().add_parser(name, **kwargs)
        if "help" in kwargs:
            self._choices_actions.append(self._ChoicesPseudoAction(name, aliases, kwargs["help"]))
        skipped = cast(Parser, _Skipped())
        for key in (name, *aliases):
            self._name_parser_map[key] = skipped
        return skipped


BUILD_ID = int_in(1, MAX_ID)
CA_HELP = (
    "verify the coordinator's TLS certificate against this CA (default: $CONVEYOR_CA, else, "
    "for the local server, the ~/.conveyor/server/tls/ca.pem it made; without one, plaintext)"
)


CONNECTION_HELP = (
    "Each of address, token and CA comes from the first that gives it: these flags; "
    "CONVEYOR_ADDR, CONVEYOR_TOKEN, CONVEYOR_CA; --context NAME or --data-dir DIR; "
    "$CONVEYOR_CONTEXT; the current context (`conveyor context use`); the local server's "
    "~/.conveyor/server."
)


def client_options() -> Parser:
    common = Parser(add_help=False)
    group = common.add_argument_group("connection", CONNECTION_HELP)
    group.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="coordinator address (default: $CONVEYOR_ADDR, else the context's, else the "
        "local server's)",
    )
    tokens = group.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        metavar="TOKEN",
        help="client token (default: $CONVEYOR_TOKEN, else the context's token file, else the "
        "local server's ~/.conveyor/server/client-token); --token-file keeps it off the "
        "command line",
    )
    tokens.add_argument("--token-file", metavar="FILE", help="read the client token from FILE")
    group.add_argument("--ca", metavar="FILE", help=CA_HELP)
    sources = group.add_mutually_exclusive_group()
    sources.add_argument(
        "--context",
        metavar="NAME",
        help="the coordinator, token file and CA of this context (see `conveyor context`)",
    )
    sources.add_argument(
        "--data-dir",
        metavar="DIR",
        help="the address, client token and CA that `conveyor server --data-dir DIR` keeps "
        "there (on the server's machine)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument(
        "--absolute",
        action="store_true",
        help="show times as ISO 8601 in local time rather than relative (3 min ago, in 2 h)",
    )
    return common
