"""The real `conveyor` command on a pseudo-terminal of a fixed size: what it wrote (bytes, escape
codes and all) and the screen a terminal would show for it (rendered by pyte)."""

from __future__ import annotations

import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence
from fcntl import ioctl

import pyte

READ_TIMEOUT_S = 90.0


def ctrl_c_as_at_a_terminal() -> None:
    """Lets the CLIs these tests start receive Ctrl-C. A suite started in the background by a
    shell without job control inherits SIGINT ignored, and an ignored signal stays ignored
    across exec, so a test's Ctrl-C would never arrive; a person at a terminal has it default.
    A handler (not an ignore) in this process becomes the default in its children."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


ctrl_c_as_at_a_terminal()  # imported while collecting, on the main thread


class Terminal:
    def __init__(
        self, command: Sequence[str], env: dict[str, str], columns: int = 100, lines: int = 30
    ) -> None:
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = b""
        master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        try:
            self.process = subprocess.Popen(
                list(command),
                stdin=slave,
                stdout=slave,
                stderr=subprocess.PIPE,
                env={**env, "TERM": "xterm-256color"},
            )
        finally:
            os.close(slave)
        self._master: int | None = master

    def text(self) -> str:
        """The screen as shown now, one line a row, trailing blanks cut."""
        return "\n".join(line.rstrip() for line in self.screen.display)

    def _read(self, wait_s: float) -> bool:
        """Reads what is there within `wait_s`; False once the command closed its side."""
        assert self._master is not None
        ready, _, _ = select.select([self._master], [], [], wait_s)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the command exited and closed its side
            data = b""
        if not data:
            os.close(self._master)
            self._master = None
            return False
        self.raw += data
        self._stream.feed(data)
        return True

    def wait_until(self, predicate: Callable[[Terminal], bool], what: str) -> None:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while not predicate(self):
            if time.monotonic() > deadline or self._master is None:
                raise AssertionError(f"the terminal never showed {what}:\n{self.text()}")
            self._read(0.5)

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str]:
        """Reads to the end; the exit code and what went to stderr."""
        deadline = time.monotonic() + READ_TIMEOUT_S
        while self._master is not None and time.monotonic() < deadline:
            self._read(0.5)
        code = self.process.wait(READ_TIMEOUT_S)
        assert self.process.stderr is not None
        errors = self.process.stderr.read().decode()
        self.process.stderr.close()
        return code, errors

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self._master is not None:
            os.close(self._master)
            self._master = None
