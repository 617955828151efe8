"""The fake executor's shell: runs a script of a few sh builtins against a workspace directory.

No process is started: every command is a Python generator run on the calling thread, so a
step's behaviour is deterministic and costs no fork. Commands: ``echo [-n]``, ``printf`` (``%s
%d %b %%`` and backslash escapes), ``cat``, ``head -c N``, ``tr SET1 SET2``, ``sleep``, ``exit``,
``true``, ``false``, ``:``, ``pwd`` (always ``/workspace``), ``mkdir [-p]``, ``ln -s``, ``ls
[-A]``, ``trap ACTION TERM``, ``wait``; ``/dev/zero``, ``/dev/urandom`` and ``/dev/null`` exist.
Any other command fails with 127, naming itself. Scripts run as with ``sh -e``.

Signals are simulated to match the real executors: a stop request is a SIGTERM, which ends the
script with 143 unless a ``trap`` catches it (its action runs at once, interrupting ``sleep``
as ``sleep & wait`` would in sh; ``trap '' TERM`` ignores it); SIGKILL (137) follows after the
grace, and a deadline kills at once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from agent.executors.base import StepControl, StepEnd
from agent.executors.fakesh_parse import AndOr, Command, Redirect, ScriptError, parse
from agent.executors.watchdog import TICK_S

Output = Generator[bytes, None, int]
CHUNK_BYTES = 256 * 1024
# The most a step's output reaches the agent in one piece, as through a Linux pipe: the agent's
# log spool sees the sizes a real process would cause.
PIPE_BYTES = 64 * 1024
TERM_EXIT = 128 + 15
KILL_EXIT = 128 + 9


class Killed(Exception):
    """The step was killed (deadline, or SIGKILL after the grace): nothing more of it runs."""

    def __init__(self, end: StepEnd, message: str) -> None:
        super().__init__(message)
        self.end = end


class CommandError(Exception):
    """A builtin cannot do what it was asked: its message goes to stderr, its status is 1."""


class ScriptExit(Exception):
    """Ends the script with `code` (``exit``, a failing command under ``sh -e``, a SIGTERM)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code % 256


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Null:
    def write(self, data: bytes, /) -> object:
        return None


@dataclass
class _StepOutput:
    deliver: Callable[[bytes], None]

    def write(self, data: bytes, /) -> object:
        for start in range(0, len(data), PIPE_BYTES):
            self.deliver(data[start : start + PIPE_BYTES])
        return None


@dataclass
class Io:
    stdin: Iterator[bytes]
    err: _Sink


Builtin = Callable[["Shell", list[str], Io], Output]


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _zeros() -> Iterator[bytes]:
    zeros = bytes(CHUNK_BYTES)
    while True:
        yield zeros


def _random() -> Iterator[bytes]:
    while True:
        yield os.urandom(CHUNK_BYTES)


_DEVICES: dict[str, Callable[[], Iterator[bytes]]] = {
    "/dev/zero": _zeros,
    "/dev/urandom": _random,
    "/dev/null": lambda: iter(()),
}


def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while data := handle.read(CHUNK_BYTES):
            yield data


class Shell:
    """One step's interpreter; `root` is its workspace, shown to the script as /workspace."""

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str],
        control: StepControl,
        on_output: Callable[[bytes], None],
        builtins: Mapping[str, Builtin],
    ) -> None:
        self._root = root.resolve()
        self._env = env
        self._control = control
        self._out = _StepOutput(on_output)
        self._builtins = builtins
        self.trap: str | None = None  # the TERM action: None default, "" ignored
        self._terminated_at: float | None = None
        self.status = 0

    @property
    def terminated(self) -> bool:
        """A SIGTERM was delivered (the step was asked to stop)."""
        return self._terminated_at is not None

    def execute(self, script: str) -> int:
        """Runs `script` to its end and returns its exit status; raises :class:`Killed`."""
        try:
            return self._run_text(script)
        except ScriptExit as exit_:
            return exit_.code

    def _run_text(self, text: str) -> int:
        try:
            lists = parse(text, self._env)
        except ScriptError as error:
            self._out.write(encode(f"fake: {error}\n"))
            raise ScriptExit(2) from None
        for and_or in lists:
            self.status = self._and_or(and_or)
        return self.status

    def _and_or(self, and_or: AndOr) -> int:
        status, last_ran = 0, False
        for index, (operator, pipeline) in enumerate(and_or):
            if (operator == "&&" and status != 0) or (operator == "||" and status == 0):
                continue
            status = self._pipeline(pipeline)
            last_ran = index == len(and_or) - 1
        if status != 0 and last_ran:  # sh -e spares the left side of && and ||
            raise ScriptExit(status)
        return status

    def _pipeline(self, pipeline: list[Command]) -> int:
        stdin: Iterator[bytes] = iter(())
        for command in pipeline[:-1]:
            stdin = _without_status(self._run(command, stdin))
        output = self._run(pipeline[-1], stdin)
        while True:
            try:
                data = next(output)
            except StopIteration as end:
                return int(end.value)
            self._out.write(data)

    def _run(self, command: Command, stdin: Iterator[bytes]) -> Output:
        """Runs one command; yields what goes down its standard output, unless redirected."""
        self.check()
        name, args = command.words[0], command.words[1:]
        with contextlib.ExitStack() as files:
            err: _Sink = self._out
            try:
                out, err = self._redirect(command.redirects, files)
                builtin = self._builtins.get(name)
                if builtin is None:
                    err.write(encode(f"fake: {name}: not supported by the fake executor\n"))
                    return 127
                output = builtin(self, args, Io(stdin, err))
                while True:
                    try:
                        data = next(output)
                    except StopIteration as end:
                        return int(end.value)
                    self.check()
                    if out is None:
                        yield data
                    else:
                        out.write(data)
            except CommandError as error:
                err.write(encode(f"fake: {name}: {error}\n"))
                return 1

    def _redirect(
        self, redirects: list[Redirect], files: contextlib.ExitStack
    ) -> tuple[_Sink | None, _Sink]:
        """Standard output (None: the pipe or the step's output) and error, left to right."""
        out: _Sink | None = None
        err: _Sink = self._out
        for redirect in redirects:
            sink: _Sink
            if redirect.target == "&1":
                sink = out or self._out
            elif redirect.target == "&2":
                sink = err
            elif redirect.target == "/dev/null":
                sink = _Null()
            else:
                mode = "ab" if redirect.append else "wb"
                sink = files.enter_context(self.path(redirect.target).open(mode))
            if redirect.fd == 1:
                out = sink
            else:
                err = sink
        return out, err

    def path(self, name: str, *, follow: bool = True) -> Path:
        """`name` in the workspace; a name leading out of it is a :class:`CommandError`.

        ``follow=False`` checks only the parent directory (for a link about to be made)."""
        if name.startswith("/"):
            raise CommandError(f"{name}: outside the workspace")
        path = self._root / name
        real = path.resolve() if follow else path.parent.resolve() / path.name
        if real != self._root and self._root not in real.parents:
            raise CommandError(f"{name}: outside the workspace")
        return path

    def source(self, name: str) -> Iterator[bytes]:
        """The bytes of a workspace file or of one of the few devices."""
        if name in _DEVICES:
            return _DEVICES[name]()
        try:
            handle = self.path(name).open("rb")
        except OSError as error:
            raise CommandError(f"{name}: {error.strerror}") from None
        return _file_chunks(handle)

    def sleep(self, seconds: float) -> int:
        """Sleeps, watching stop and deadline; 143 when a TERM trap cut it short."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.check():
                return TERM_EXIT
            if self._control.stop.is_set():
                time.sleep(min(TICK_S, left))
            else:
                self._control.stop.wait(min(TICK_S, left))
        return 0

    def check(self) -> bool:
        """Delivers the signals due now: raises :class:`Killed` (or exits the script); True when
        a TERM trap has just run."""
        control, now = self._control, time.monotonic()
        if control.deadline is not None and now >= control.deadline:
            raise Killed(StepEnd.TIMEOUT, "deadline passed; killed")
        if not control.stop.is_set():
            return False
        if self._terminated_at is None:
            self._terminated_at = now
            if self.trap is None:
                raise ScriptExit(TERM_EXIT)
            if self.trap and control.grace_s > 0:
                self._run_text(self.trap)
                return True
        # Read now, not at the stop: a lost lease cuts the grace to zero while the step runs.
        if now - self._terminated_at >= control.grace_s:
            raise Killed(StepEnd.STOPPED, "stopped on request; killed after the grace")
        return False


def _without_status(output: Output) -> Iterator[bytes]:
    """A pipe's reading end: only the last command's status counts (no pipefail)."""
    yield from output
