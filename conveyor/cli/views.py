"""How a followed build is shown: the live view on a terminal, plain lines otherwise (what
scripts read, unchanged); `--color` and `--logs` decide the rest. And what Ctrl-C says."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from types import TracebackType
from typing import Protocol

from conveyor.cli.errors import EXIT_INTERRUPTED
from conveyor.cli.progress import Progress
from conveyor.cli.terminal import choose_colours, styled
from conveyor.v1 import control_pb2


class View(Protocol):
    def __enter__(self) -> View: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def prime(self, build: control_pb2.Build) -> None: ...

    def snapshot(self, build: control_pb2.Build) -> None: ...

    def log(self, chunk: control_pb2.LogChunk) -> None: ...


def open_view(args: argparse.Namespace) -> View:
    """The view for a command's `--logs` and `--color` (both optional on a command)."""
    choose_colours(getattr(args, "color", None) or "auto")
    logs = getattr(args, "logs", None)
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from conveyor.cli.live import LiveView, live_console

        return LiveView(live_console(styled(sys.stdout)), logs or "auto")
    return Progress(logs=logs or "all")


def again(args: argparse.Namespace, command: str) -> str:
    """`conveyor COMMAND` with the connection flags this command line was given, so the
    command printed as a hint reaches the same coordinator when typed (never the token)."""
    words = ["conveyor", *command.split()]
    for flag in ("coordinator", "context", "data_dir", "token_file", "ca"):
        value = getattr(args, flag, None)
        if value:
            words += [f"--{flag.replace('_', '-')}", shlex.quote(str(value))]
    return " ".join(words)


def stopped_following(build_id: int, args: argparse.Namespace) -> int:
    """Ctrl-C while following: the build goes on; say so, and how to get back to it."""
    print(
        f"\nstopped following build {build_id}; it is still running.\n"
        f"  follow again: {again(args, f'show {build_id} --follow')}\n"
        f"  cancel it:    {again(args, f'cancel {build_id}')}",
        file=sys.stderr,
        flush=True,
    )
    return EXIT_INTERRUPTED
