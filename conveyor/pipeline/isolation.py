"""Readers of the keys that change how a job's containers are confined: `privileged`, `user`
(and the yes/no reader other job flags such as `interruptible` share)."""

from __future__ import annotations

import re

from yaml.nodes import Node, ScalarNode

from conveyor.pipeline.issues import quote
from conveyor.pipeline.nodes import INT_TAG, STR_TAG, Walker, describe

BOOL_TAG = "tag:yaml.org,2002:bool"
_TRUE = frozenset({"true", "yes", "on"})

_USER_PART = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,31}"
_USER_RE = re.compile(f"{_USER_PART}(?::{_USER_PART})?")
_USER_RULE = "a user name or uid, optionally ':' and a group name or gid (e.g. 1000:1000)"


def read_bool(w: Walker, node: Node, path: str) -> bool:
    w.visit(node, path)
    if isinstance(node, ScalarNode) and node.tag == BOOL_TAG:
        return str(node.value).lower() in _TRUE
    w.report(path, f"expected true or false, got {describe(node)}", node)
    return False


def read_user(w: Walker, node: Node, path: str) -> str | None:
    """`user: 1000`, `user: "1000:1000"` or `user: nobody`; None when absent or invalid."""
    w.visit(node, path)
    text = str(node.value) if isinstance(node, ScalarNode) else ""
    if node.tag not in (STR_TAG, INT_TAG) or not isinstance(node, ScalarNode):
        w.report(path, f"expected a user ({_USER_RULE}), got {describe(node)}", node)
        return None
    if not _USER_RE.fullmatch(text):
        w.report(path, f"invalid user {quote(text[:80])} ({_USER_RULE})", node)
        return None
    return text
