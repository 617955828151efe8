"""Reads the small subset of sh the fake executor understands into lists of commands.

Understood: words with '...' and "..." quoting and backslash escapes; ``$NAME``, ``${NAME}`` and
``${NAME:-default}`` (expanded from the step's env while reading, never split into fields);
``;``, newlines, ``&&``, ``||``, ``|``, a trailing ``&`` (run in the foreground); ``#`` comments;
redirections ``>``, ``>>``, ``2>``, ``>&2``, ``2>&1``. Anything else (command substitution,
``<``, subshells, loops, assignments) is refused as a :class:`ScriptError` rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_REDIRECT = re.compile(r"([12]?)(>>|>&|>)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")
_WORD_END = " \t\n;|&<>()`"
_SEPARATORS = (";", "&", "\n")


class ScriptError(Exception):
    """The script uses sh the fake does not understand."""


@dataclass(frozen=True)
class Redirect:
    fd: int  # 1 or 2
    append: bool
    target: str  # a path, or "&1" / "&2" for a duplicated descriptor


@dataclass
class Command:
    words: list[str] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


Pipeline = list[Command]
# Each pipeline with the operator before it: "" for the first, then "&&" or "||".
AndOr = list[tuple[str, Pipeline]]
Token = tuple[str, str]  # ("word" | "op" | "redirect", text)


def parse(text: str, env: Mapping[str, str]) -> list[AndOr]:
    return _Parser().parse(tokenize(text, env))


def tokenize(text: str, env: Mapping[str, str]) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char, pair = text[i], text[i : i + 2]
        redirect = _REDIRECT.match(text, i)
        if char in " \t":
            i += 1
        elif char == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif pair in ("&&", "||"):
            tokens.append(("op", pair))
            i += 2
        elif char in ";|&\n":
            tokens.append(("op", char))
            i += 1
        elif redirect:
            tokens.append(("redirect", redirect.group(0)))
            i = redirect.end()
        elif char in "<()`":
            raise ScriptError(f"{char!r} is not supported")
        else:
            word, i = _word(text, i, env)
            tokens.append(("word", word))
    return tokens


def _word(text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    parts: list[str] = []
    while i < len(text) and text[i] not in _WORD_END:
        char = text[i]
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ScriptError("unterminated '")
            parts.append(text[i + 1 : end])
            i = end + 1
        elif char == '"':
            i = _double_quoted(text, i + 1, env, parts)
        elif char == "\\":
            if text[i + 1 : i + 2] != "\n":  # backslash-newline continues the line
                parts.append(text[i + 1 : i + 2])
            i += 2
        elif char == "$":
            value, i = _dollar(text, i, env)
            parts.append(value)
        else:
            parts.append(char)
            i += 1
    return "".join(parts), i


def _double_quoted(text: str, i: int, env: Mapping[str, str], parts: list[str]) -> int:
    while i < len(text) and text[i] != '"':
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in ('"', "\\", "$", "`", "\n"):
            parts.append("" if text[i + 1] == "\n" else text[i + 1])
            i += 2
        elif char == "$":
            value, i = _dollar(text, i, env)
            parts.append(value)
        elif char == "`":
            raise ScriptError("command substitution is not supported")
        else:
            parts.append(char)
            i += 1
    if i >= len(text):
        raise ScriptError('unterminated "')
    return i + 1


def _dollar(text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
    """Expands the parameter at ``text[i] == "$"``."""
    rest = text[i + 1 : i + 2]
    if rest == "(":
        raise ScriptError("command substitution is not supported")
    if rest == "{":
        braced = _BRACED.match(text, i + 1)
        if braced is None:
            raise ScriptError(f"unsupported expansion {text[i : i + 12]!r}")
        name, operator, default = braced.groups()
        value = env.get(name)
        if (operator == ":-" and not value) or (operator == "-" and value is None):
            value = default
        return value or "", braced.end()
    name_match = _NAME.match(text, i + 1)
    if name_match:
        return env.get(name_match.group(0), ""), name_match.end()
    if rest and rest in "$?!#@*0123456789":
        raise ScriptError(f"${rest} is not supported")
    return "$", i + 1


class _Parser:
    def __init__(self) -> None:
        self._lists: list[AndOr] = []
        self._and_or: AndOr = []
        self._pipeline: Pipeline = []
        self._command = Command()
        self._operator = ""

    def parse(self, tokens: list[Token]) -> list[AndOr]:
        stream = iter(tokens)
        for kind, text in stream:
            if kind == "word":
                self._command.words.append(text)
            elif kind == "redirect":
                self._command.redirects.append(_redirect(text, next(stream, ("op", ""))))
            elif text == "\n" and self._continued():
                continue
            elif text in _SEPARATORS:
                self._end_list()
            else:
                self._end_command()
                if text != "|":
                    self._and_or.append((self._operator, self._pipeline))
                    self._operator, self._pipeline = text, []
        if self._operator and not self._pipeline and not self._command.words:
            raise ScriptError(f"nothing after {self._operator!r}")
        self._end_list()
        return self._lists

    def _continued(self) -> bool:
        """A newline right after `|`, `&&` or `||` continues the line."""
        return not self._command.words and bool(self._pipeline or self._operator)

    def _end_command(self) -> None:
        if not self._command.words:
            raise ScriptError("a command is missing")
        self._pipeline.append(self._command)
        self._command = Command()

    def _end_list(self) -> None:
        if not (self._command.words or self._pipeline or self._and_or):
            return
        self._end_command()
        self._and_or.append((self._operator, self._pipeline))
        self._lists.append(self._and_or)
        self._and_or, self._pipeline, self._operator = [], [], ""


def _redirect(operator: str, target: Token) -> Redirect:
    kind, text = target
    if kind != "word":
        raise ScriptError(f"{operator!r} needs a target")
    fd = 2 if operator.startswith("2") else 1
    if operator.endswith("&"):
        if text not in ("1", "2"):
            raise ScriptError(f"cannot duplicate descriptor {text!r}")
        return Redirect(fd, False, f"&{text}")
    return Redirect(fd, operator.endswith(">>"), text)
