"""`.gitignore` / `.conveyorignore` rules for source snapshots (a subset of gitignore(5)).

Chosen over `git ls-files` so a directory that is not a git work tree behaves the same. Supported:
comments, blank lines, `!` negation, trailing `/` (directories only), patterns with a `/`
anchored to the file's directory, others matching a name at any depth, `*`, `?`, `[...]`, `**`.
Files in nested directories apply below their directory; the last matching rule wins, and an
ignored directory is not descended into (as in git, its files cannot be re-included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conveyor.paths import glob_regex

IGNORE_FILES = (".gitignore", ".conveyorignore")
ALWAYS_IGNORED = frozenset({".git"})


@dataclass(frozen=True)
class Rule:
    base: str  # directory of the ignore file, relative to the snapshot root ("" at the root)
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool


def parse_rules(text: str, base: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!").removeprefix("\\")
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        pattern = line.lstrip("/") if anchored else f"**/{line}"
        rules.append(Rule(base, glob_regex(pattern), negated, dir_only))
    return rules


def read_rules(directory: Path, base: str) -> list[Rule]:
    rules: list[Rule] = []
    for name in IGNORE_FILES:
        path = directory / name
        if path.is_file():
            rules.extend(parse_rules(path.read_text(errors="replace"), base))
    return rules


def ignored(rules: list[Rule], relative: str, is_dir: bool) -> bool:
    """Whether `relative` (to the snapshot root) is ignored; the last matching rule decides."""
    if relative.rsplit("/", 1)[-1] in ALWAYS_IGNORED:
        return True
    verdict = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.base:
            if not relative.startswith(rule.base + "/"):
                continue
            local = relative[len(rule.base) + 1 :]
        else:
            local = relative
        if rule.regex.match(local):
            verdict = not rule.negated
    return verdict
