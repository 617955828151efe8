"""`.gitignore` / `.conveyorignore` rules for source snapshots, matched as git matches them.

Chosen over `git ls-files` so a directory that is not a git work tree behaves the same; the
matching itself is `pathspec`'s git-compatible one, so escapes, trailing spaces, `**`, anchoring
and negation mean what they mean to git. A rule file applies below its own directory; a deeper
file overrides a shallower one, `.conveyorignore` overrides `.gitignore` beside it, and within
a file the last matching rule wins. An ignored directory is not descended into (as in git, its
files cannot be re-included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILES = (".gitignore", ".conveyorignore")
ALWAYS_IGNORED = frozenset({".git"})


@dataclass(frozen=True)
class Rules:
    base: str  # directory of the rule file, relative to the snapshot root ("" at the root)
    spec: GitIgnoreSpec


def parse_rules(text: str, base: str) -> Rules:
    return Rules(base, GitIgnoreSpec.from_lines(text.splitlines()))


def read_rules(directory: Path, base: str) -> list[Rules]:
    """The rule files of `directory`, in increasing precedence."""
    found = []
    for name in IGNORE_FILES:
        path = directory / name
        if path.is_file():
            found.append(parse_rules(path.read_text(errors="replace"), base))
    return found


def ignored(rules: list[Rules], relative: str, is_dir: bool) -> bool:
    """Whether `relative` (to the snapshot root) is ignored; `rules` go from the root down,
    each file's rules applying below its directory, the last file with a matching rule deciding.
    """
    if relative.rsplit("/", 1)[-1] in ALWAYS_IGNORED:
        return True
    for file_rules in reversed(rules):
        if file_rules.base:
            if not relative.startswith(file_rules.base + "/"):
                continue
            local = relative[len(file_rules.base) + 1 :]
        else:
            local = relative
        if is_dir:
            verdict = _dir_verdict(file_rules.spec, local)
        else:
            verdict = file_rules.spec.check_file(local).include
        if verdict is not None:
            return verdict
    return False


def _dir_verdict(spec: GitIgnoreSpec, local: str) -> bool | None:
    """Whether a rule file excludes the directory `local` itself (None: no rule says).

    A trailing slash is how pathspec tells a directory (for rules like `build/`); but then
    `out/**` matches too, though to git it matches only what is inside `out`: `out` itself
    stays, is descended into, and `!out/keep` can re-include a file there.
    """
    result = spec.check_file(local + "/")
    if result.include and result.index is not None:
        rule = spec.patterns[result.index].pattern
        if isinstance(rule, str) and rule.rstrip().endswith("/**"):
            return None
    return result.include
