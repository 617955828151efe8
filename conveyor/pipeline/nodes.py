"""Typed, position-aware reading of a PyYAML node tree.

Readers record a PipelineIssue carrying the node's line and column instead of raising, so a single
pass reports every independent problem; only the node budget stops a walk early.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.pipeline.issues import PipelineIssue, closest, quote
from conveyor.pipeline.limits import MAX_ISSUES, MAX_YAML_NODES

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"

_SCALAR_KINDS = {
    NULL_TAG: "null",
    STR_TAG: "a string",
    INT_TAG: "an integer",
    FLOAT_TAG: "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:timestamp": "a timestamp",
}

# What a quoted YAML scalar can spell with escapes ("\\ud800", "\\0") but no process, file or
# protobuf message can carry: a lone surrogate is not Unicode text (it cannot be encoded as
# UTF-8, so the job could never be sent to an agent), and a NUL ends a C string.
_UNCARRIABLE = re.compile("[\ud800-\udfff\x00]")

Pair = tuple[str, Node, Node]
"""A mapping entry: key text, key node, value node."""

Fields = dict[str, tuple[Node, Node]]
"""Entries of a fixed-schema mapping by key: (key node, value node)."""


T = TypeVar("T")

Reader = Callable[["Walker", Node, str], T]
"""Reads the value at a node and path, reporting problems to the walker."""


class WalkAborted(Exception):
    """A limit was crossed that makes reading the rest of the document pointless."""


def describe(node: Node) -> str:
    """What kind of value `node` is, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _SCALAR_KINDS.get(node.tag, f"a value tagged {quote(node.tag)}")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    return f"{path}[{index}]"


_JOB_PATH = re.compile(r"jobs\.([^.\[]+)(?:\.(.+))?")
_STEP_PATH = re.compile(r"steps\[(\d+)\]")


def place(path: str) -> str:
    """Where a mapping sits, in the words of a pipeline's author: "job 'build'", "step 2 of job
    'build'", "'approval' of job 'deploy'"."""
    if not path:
        return "the pipeline"
    job = _JOB_PATH.fullmatch(path)
    if job is None:
        return quote(path)
    name, inner = job.groups()
    if inner is None:
        return f"job {quote(name)}"
    step = _STEP_PATH.fullmatch(inner)
    if step is not None:
        return f"step {int(step.group(1)) + 1} of job {quote(name)}"
    return f"{quote(inner)} of job {quote(name)}"


def unknown_key(key: str, path: str, allowed: tuple[str, ...]) -> str:
    """The message for a key a fixed-schema mapping does not take: the likeliest key it was
    meant to be, else every key it takes."""
    matches = closest(key, allowed)
    hint = f"did you mean {quote(matches[0])}?" if matches else f"allowed: {', '.join(allowed)}"
    return f"unknown key {quote(key)} in {place(path)} ({hint})"


@dataclass
class Walker:
    issues: list[PipelineIssue] = field(default_factory=list)
    visited: int = 0
    recorded: bool = False
    """Reading a stored build's pipeline (see load_pipeline)."""

    def report(self, path: str, message: str, node: Node | None) -> None:
        mark = None if node is None else node.start_mark
        if mark is None:
            self.issues.append(PipelineIssue(path, message, None, None))
        else:
            self.issues.append(PipelineIssue(path, message, mark.line + 1, mark.column + 1))
        if len(self.issues) == MAX_ISSUES:
            # Positionless, so it sorts first: the reader learns up front that the list is cut.
            message = f"too many problems; stopped after the first {MAX_ISSUES}"
            self.issues.append(PipelineIssue("", message, None, None))
            raise WalkAborted

    def visit(self, node: Node, path: str) -> None:
        # An alias makes the tree a graph: a few lines can name one subtree millions of times, so
        # the budget counts visits rather than distinct nodes.
        self.visited += 1
        if self.visited > MAX_YAML_NODES:
            message = (
                f"too many YAML nodes (more than {MAX_YAML_NODES}, aliases counted at each use)"
            )
            self.report(path, message, node)
            raise WalkAborted

    def mapping(self, node: Node, path: str) -> list[Pair] | None:
        """The entries of a mapping with free-form keys; None (reported) if not a mapping."""
        self.visit(node, path)
        if not isinstance(node, MappingNode):
            self.report(path, f"expected a mapping, got {describe(node)}", node)
            return None
        pairs: list[Pair] = []
        seen: set[str] = set()
        entries: list[tuple[Node, Node]] = node.value
        for key_node, value_node in entries:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in seen:
                self.report(path, f"duplicate key {quote(key)}", key_node)
                continue
            seen.add(key)
            pairs.append((key, key_node, value_node))
        return pairs

    def _key(self, node: Node, path: str) -> str | None:
        self.visit(node, path)
        if node.tag == MERGE_TAG:
            self.report(path, "YAML merge keys ('<<') are not supported", node)
            return None
        if not isinstance(node, ScalarNode) or node.tag == NULL_TAG:
            self.report(path, f"expected a string key, got {describe(node)}", node)
            return None
        return self._text(node, path)

    def _text(self, node: ScalarNode, path: str) -> str:
        """A scalar's text; a character no agent could be sent is reported (once, named)."""
        text = str(node.value)
        found = _UNCARRIABLE.search(text)
        if found is not None:
            char = found.group()
            kind = "a NUL character" if char == "\x00" else "a lone surrogate, not Unicode text"
            self.report(path, f"invalid character U+{ord(char):04X} ({kind})", node)
        return text

    def section(
        self,
        node: Node,
        path: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        where: Node | None = None,
    ) -> Section | None:
        """A fixed-schema mapping; unknown and missing keys are reported.

        `where` is the node a missing key is reported at, when the mapping's own position (its
        first key) would be less helpful than, say, the key that names it.
        """
        pairs = self.mapping(node, path)
        if pairs is None:
            return None
        found: Fields = {}
        for key, key_node, value_node in pairs:
            if key in allowed:
                found[key] = (key_node, value_node)
            else:
                self.report(join(path, key), unknown_key(key, path, allowed), key_node)
        for key in required:
            if key not in found:
                self.report(path, f"missing required key {quote(key)}", where or node)
        return Section(self, path, found)

    def sequence(self, node: Node, path: str) -> list[Node] | None:
        """The items of a list (not yet visited); None (reported) if not a list."""
        self.visit(node, path)
        if not isinstance(node, SequenceNode):
            self.report(path, f"expected a list, got {describe(node)}", node)
            return None
        items: list[Node] = node.value
        return items

    def string(self, node: Node, path: str) -> str | None:
        """A string scalar's text; None (reported) for anything else, `123` included."""
        self.visit(node, path)
        if isinstance(node, ScalarNode) and node.tag == STR_TAG:
            return self._text(node, path)
        self.report(path, f"expected a string, got {describe(node)}", node)
        return None

    def scalar(self, node: Node, path: str) -> str | None:
        """Any non-null scalar's text as written (`2` -> "2", `true` -> "true")."""
        self.visit(node, path)
        if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
            return self._text(node, path)
        self.report(path, f"expected a string, number or boolean, got {describe(node)}", node)
        return None


@dataclass
class Section:
    """A fixed-schema mapping that has been checked, with the path it sits at."""

    walker: Walker
    path: str
    fields: Fields = field(default_factory=dict)

    def has(self, key: str) -> bool:
        return key in self.fields

    def node(self, key: str) -> Node | None:
        return self.fields[key][1] if key in self.fields else None

    def get(self, key: str, read: Reader[T], default: T) -> T:
        """`read` applied to `key`'s value, or `default` when the key is absent."""
        if key not in self.fields:
            return default
        return read(self.walker, self.fields[key][1], join(self.path, key))
