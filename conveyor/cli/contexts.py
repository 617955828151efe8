"""The CLI's config file: named coordinators ("contexts") and which one is current.

    current = "prod"

    [contexts.prod]
    coordinator = "ci.example.com:7420"
    token_file = "/home/me/.config/conveyor/prod.token"
    ca = "/home/me/.config/conveyor/prod-ca.pem"

Light (no gRPC): the parser's completion and every client command may read it. A context keeps
the path of its token file, never the token: the config is the kind of file people copy between
machines and keep in dotfile repositories, and a file of its own keeps the token's permissions,
rotation and provisioning apart from it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.cli.errors import CliError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
CONTEXT_KEYS = ("coordinator", "token_file", "ca")
TOP_KEYS = ("current", "contexts")
CONFIG_MODE = 0o600
CONFIG_DIR_MODE = 0o700

_HEADER_RE = re.compile(r"\s*\[\s*([^\[\]]+?)\s*\]")
_KEY_RE = re.compile(r"\s*([A-Za-z0-9_.\"'-]+?)\s*=")


@dataclass(frozen=True)
class Context:
    name: str
    coordinator: str
    token_file: str | None = None
    ca: str | None = None


@dataclass
class Config:
    path: Path
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)


def config_path() -> Path:
    """$CONVEYOR_CONFIG, else $XDG_CONFIG_HOME/conveyor/config.toml, else ~/.config/..."""
    given = os.environ.get("CONVEYOR_CONFIG")
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG rules ignore a relative value.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "conveyor" / "config.toml"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise CliError(
            f"invalid context name {name!r} (letters, digits, '-' and '_', at most 64, "
            "starting with a letter or digit)"
        )
    return name


def load(path: Path | None = None) -> Config:
    """The config at `path` (default: `config_path()`); none is an empty one. A file that is
    not valid is a usage error naming the file, the line and the key."""
    import tomllib  # not for commands whose flags or environment name the coordinator

    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path)
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"config {path}: cannot read it ({error})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CliError(f"config {path}: {_syntax_problem(text, str(error))}") from None
    return _parse(path, text, doc)


def _syntax_problem(text: str, message: str) -> str:
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    if match is None:
        return f"not valid TOML ({message})"
    number = int(match.group(1))
    lines = text.splitlines()
    key = _KEY_RE.match(lines[number - 1]) if 0 < number <= len(lines) else None
    named = f", key {key.group(1)}" if key else ""
    return f"line {number}{named}: not valid TOML ({message[: match.start()].strip()})"


def _parse(path: Path, text: str, doc: dict[str, object]) -> Config:
    def problem(keys: tuple[str, ...], what: str) -> CliError:
        line = line_of(text, keys)
        where = f"line {line}, " if line else ""
        return CliError(f"config {path}: {where}key {'.'.join(keys)}: {what}")

    for key in doc:
        if key not in TOP_KEYS:
            raise problem((key,), f"unknown key (known: {', '.join(TOP_KEYS)})")
    current = doc.get("current")
    if current is not None and not isinstance(current, str):
        raise problem(("current",), "not a string (the name of a context)")
    tables = doc.get("contexts", {})
    if not isinstance(tables, dict):
        raise problem(("contexts",), "not a table ([contexts.NAME] sections)")
    contexts: dict[str, Context] = {}
    for name, table in tables.items():
        keys = ("contexts", name)
        if not NAME_RE.match(name):
            raise problem(keys, "not a valid context name (letters, digits, '-' and '_')")
        if not isinstance(table, dict):
            raise problem(keys, "not a table (coordinator, token_file, ca)")
        for key, value in table.items():
            if key not in CONTEXT_KEYS:
                raise problem((*keys, key), f"unknown key (known: {', '.join(CONTEXT_KEYS)})")
            if not isinstance(value, str) or not value:
                raise problem((*keys, key), "not a non-empty string")
        if "coordinator" not in table:
            raise problem(keys, "no coordinator (HOST:PORT)")
        contexts[name] = Context(
            name, table["coordinator"], table.get("token_file"), table.get("ca")
        )
    if current is not None and current not in contexts:
        raise problem(("current",), f"names no context ({_known(contexts)})")
    return Config(path, current, contexts)


def _known(contexts: dict[str, Context]) -> str:
    return "contexts: " + ", ".join(sorted(contexts)) if contexts else "there are none"


def line_of(text: str, keys: tuple[str, ...]) -> int | None:
    """The first line that sets `keys` or something in it (a table opened, a key under it);
    None when it cannot be told."""
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER_RE.match(line)
        if header:
            table = _split(header.group(1))
            path = table
        elif key := _KEY_RE.match(line):
            path = (*table, *_split(key.group(1)))
        else:
            continue
        if path[: len(keys)] == keys:
            return number
    return None


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in dotted.split("."))


def find(config: Config, name: str, named_by: str) -> Context:
    context = config.contexts.get(name)
    if context is None:
        raise CliError(
            f"{named_by} names context {name!r}, which {config.path} does not have "
            f"({_known(config.contexts)}; add it with `conveyor context add`)"
        )
    return context


def save(config: Config) -> None:
    """Writes `config` whole (temp file, then rename: a reader never sees half of it), 0600."""
    import tempfile  # only the context commands write the config

    config.path.parent.mkdir(mode=CONFIG_DIR_MODE, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=config.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render(config))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, CONFIG_MODE)
        os.replace(temp, config.path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def render(config: Config) -> str:
    import tomli_w  # only the context commands write the config

    doc: dict[str, Any] = {}
    if config.current is not None:
        doc["current"] = config.current
    doc["contexts"] = {
        context.name: {
            key: getattr(context, key) for key in CONTEXT_KEYS if getattr(context, key) is not None
        }
        for context in config.contexts.values()
    }
    header = "# Conveyor's contexts; `conveyor context add|use|remove` rewrite this file.\n\n"
    return header + tomli_w.dumps(doc)
