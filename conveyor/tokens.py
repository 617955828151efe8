"""Tokens read from files (`--token-file` and the like), so none need be on a command line,
where other users of the machine can read it (`ps`, /proc) and shells keep it in history."""

from __future__ import annotations

from pathlib import Path

# A token is a line of text; a file much larger than that was not meant as one.
MAX_TOKEN_FILE_BYTES = 4096


class TokenFileError(ValueError):
    """The file cannot be read as a token; the message names the flag and the file."""


def read_token_file(path: str, flag: str) -> str:
    """The token in `path` (surrounding whitespace and the final newline dropped)."""
    file = Path(path).expanduser()
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise TokenFileError(f"{flag} {path}: cannot read it ({error.strerror})") from None
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise TokenFileError(f"{flag} {path}: larger than a token ({MAX_TOKEN_FILE_BYTES} bytes)")
    try:
        token = data.decode().strip()
    except UnicodeDecodeError:
        raise TokenFileError(f"{flag} {path}: not text") from None
    if not token:
        raise TokenFileError(f"{flag} {path}: the file is empty")
    if any(char.isspace() or not char.isprintable() for char in token):
        raise TokenFileError(f"{flag} {path}: more than one line or word (a token is one)")
    return token
