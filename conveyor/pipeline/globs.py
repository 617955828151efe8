"""Branch, tag and event globs: the one matcher behind `when:` (DESIGN §4.1) and `on: push:` (§4.2).

`fnmatch` rules, case-sensitive, and `*` also crosses `/`: `release/*` admits `release/1.2` and
`release/1.2/hotfix` in both keys, so a pattern copied from one key to the other keeps its meaning.
What an empty list means is the caller's to say (`when:` admits anything, `on: push:` nothing),
so this matcher answers only whether some pattern fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase


def any_glob_matches(patterns: Sequence[str], value: str) -> bool:
    """Whether `value` fits at least one of `patterns` (none: False)."""
    return any(fnmatchcase(value, pattern) for pattern in patterns)
