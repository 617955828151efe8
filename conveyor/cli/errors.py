"""The CLI's exit codes and its one error type: light, so the parser and `main` need no gRPC."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
# Ctrl-C, as shells report a command that SIGINT ended (128 + 2).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
