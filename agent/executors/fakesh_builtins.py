"""The commands of the fake executor's shell, each a generator of its standard output."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from agent.executors.fakesh import Builtin, CommandError, Io, Output, ScriptExit, Shell, encode

_ESCAPES = {"\\": b"\\", "a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t"}
_ESCAPES["v"] = b"\v"
_OCTAL = re.compile(r"[0-7]{1,3}")
_TERM = ("TERM", "SIGTERM", "15")


def _quiet(run: Callable[[Shell, list[str], Io], int]) -> Builtin:
    """A builtin that writes nothing to its standard output."""

    def builtin(shell: Shell, args: list[str], io: Io) -> Output:
        yield from ()
        return run(shell, args, io)

    return builtin


def _unescape(text: str, i: int) -> tuple[bytes, int]:
    """The bytes of the backslash escape at ``text[i] == "\\"``, and where it ends."""
    octal = _OCTAL.match(text, i + 1)
    if octal:
        return bytes([int(octal.group(0), 8) & 0xFF]), octal.end()
    char = text[i + 1 : i + 2]
    if char in _ESCAPES:
        return _ESCAPES[char], i + 2
    return encode("\\" + char), i + 2


def _unescaped(text: str) -> bytes:
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] == "\\":
            data, i = _unescape(text, i)
            out += data
        else:
            out += encode(text[i])
            i += 1
    return bytes(out)


def _format(fmt: str, values: list[str], out: bytearray) -> int:
    """Appends one pass of printf's format; returns how many values it used."""
    used, i = 0, 0
    while i < len(fmt):
        char = fmt[i]
        if char == "\\":
            data, i = _unescape(fmt, i)
            out += data
            continue
        if char != "%":
            out += encode(char)
            i += 1
            continue
        conversion, i = fmt[i + 1 : i + 2], i + 2
        if conversion == "%":
            out += b"%"
            continue
        value = values[used] if used < len(values) else ""
        used += 1
        if conversion == "s":
            out += encode(value)
        elif conversion == "b":
            out += _unescaped(value)
        elif conversion == "d":
            out += str(_number(value or "0")).encode()
        else:
            raise CommandError(f"%{conversion}: not supported")
    return used


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"{text!r}: not a number") from None


def echo(shell: Shell, args: list[str], io: Io) -> Output:
    newline = not args or args[0] != "-n"
    words = args if newline else args[1:]
    yield encode(" ".join(words) + ("\n" if newline else ""))
    return 0


def printf(shell: Shell, args: list[str], io: Io) -> Output:
    if not args:
        raise CommandError("usage: printf FORMAT [ARGUMENT...]")
    fmt, values, out = args[0], args[1:], bytearray()
    while True:
        used = _format(fmt, values, out)
        values = values[used:]
        if not values or not used:
            break
    yield bytes(out)
    return 0


def cat(shell: Shell, args: list[str], io: Io) -> Output:
    if not args:
        yield from io.stdin
    for name in args:
        yield from shell.source(name)
    return 0


def head(shell: Shell, args: list[str], io: Io) -> Output:
    if len(args) not in (2, 3) or args[0] != "-c":
        raise CommandError("only `head -c COUNT [FILE]` is supported")
    remaining = _number(args[1])
    source = shell.source(args[2]) if len(args) == 3 else io.stdin
    for data in source:
        if remaining <= 0:
            break
        yield data[:remaining]
        remaining -= len(data[:remaining])
    return 0


def tr(shell: Shell, args: list[str], io: Io) -> Output:
    if len(args) != 2 or args[0].startswith("-"):
        raise CommandError("only `tr SET1 SET2` is supported")
    old, new = _unescaped(args[0]), _unescaped(args[1])
    if not old or not new:
        raise CommandError("empty set")
    table = bytes.maketrans(old, new[: len(old)].ljust(len(old), new[-1:]))
    for data in io.stdin:
        yield data.translate(table)
    return 0


def pwd(shell: Shell, args: list[str], io: Io) -> Output:
    yield b"/workspace\n"
    return 0


def ls(shell: Shell, args: list[str], io: Io) -> Output:
    every = "-A" in args
    names = [a for a in args if a not in ("-A", "-1")]
    if any(n.startswith("-") for n in names) or len(names) > 1:
        raise CommandError("only `ls [-A] [DIR]` is supported")
    directory = shell.path(names[0] if names else ".")
    try:
        entries = sorted(os.listdir(directory)) if directory.is_dir() else [directory.name]
    except OSError as error:
        raise CommandError(f"{names[0] if names else '.'}: {error.strerror}") from None
    yield b"".join(encode(e) + b"\n" for e in entries if every or not e.startswith("."))
    return 0


@_quiet
def sleep(shell: Shell, args: list[str], io: Io) -> int:
    if len(args) != 1:
        raise CommandError("usage: sleep SECONDS")
    try:
        seconds = float(args[0])
    except ValueError:
        raise CommandError(f"invalid time interval {args[0]!r}") from None
    return shell.sleep(seconds)


@_quiet
def exit_(shell: Shell, args: list[str], io: Io) -> int:
    raise ScriptExit(_number(args[0]) if args else shell.status)


@_quiet
def mkdir(shell: Shell, args: list[str], io: Io) -> int:
    parents = "-p" in args
    for name in (a for a in args if a != "-p"):
        try:
            shell.path(name).mkdir(parents=parents, exist_ok=parents)
        except OSError as error:
            raise CommandError(f"{name}: {error.strerror}") from None
    return 0


@_quiet
def ln(shell: Shell, args: list[str], io: Io) -> int:
    if len(args) != 3 or args[0] != "-s":
        raise CommandError("only `ln -s TARGET NAME` is supported")
    try:
        shell.path(args[2], follow=False).symlink_to(args[1])
    except OSError as error:
        raise CommandError(f"{args[2]}: {error.strerror}") from None
    return 0


@_quiet
def trap(shell: Shell, args: list[str], io: Io) -> int:
    if len(args) < 2 or any(signal not in _TERM for signal in args[1:]):
        raise CommandError("only `trap ACTION TERM` is supported")
    shell.trap = None if args[0] == "-" else args[0]
    return 0


BUILTINS: dict[str, Builtin] = {
    "echo": echo,
    "printf": printf,
    "cat": cat,
    "head": head,
    "tr": tr,
    "pwd": pwd,
    "ls": ls,
    "sleep": sleep,
    "exit": exit_,
    "mkdir": mkdir,
    "ln": ln,
    "trap": trap,
    "true": _quiet(lambda shell, args, io: 0),
    ":": _quiet(lambda shell, args, io: 0),
    "false": _quiet(lambda shell, args, io: 1),
    "wait": _quiet(lambda shell, args, io: 0),
}
