"""Turning pipeline text into a validated Pipeline, or a PipelineError saying exactly what is wrong.

The text is composed into a PyYAML node tree, never constructed into Python objects, so every value
keeps the line and column it came from and no YAML tag can instantiate anything. Composing is
guarded too: the document's size, nesting and node count are bounded before the tree is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import StreamEndEvent
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from conveyor.pipeline.issues import PipelineError, PipelineIssue
from conveyor.pipeline.limits import MAX_DEPTH, MAX_TEXT_BYTES, MAX_YAML_NODES
from conveyor.pipeline.nodes import NULL_TAG, WalkAborted, Walker
from conveyor.pipeline.schema import read_pipeline

if TYPE_CHECKING:
    from yaml.error import Mark
    from yaml.events import Event
    from yaml.nodes import Node

    from conveyor.pipeline.model import Pipeline

__all__ = ["PipelineError", "PipelineIssue", "load_pipeline"]


def load_pipeline(
    text: str | bytes, source: str = "pipeline.yml", *, recorded: bool = False
) -> Pipeline:
    """Parse and validate a pipeline document.

    `source` names the document in error messages. Raises PipelineError, listing every problem
    found, for any input that is not a valid pipeline; never any other exception. `recorded`:
    the text is a stored build's, accepted when it was submitted, so rules added since that only
    refuse names (the reserved env names) do not refuse it now.
    """
    try:
        root = _compose(_decode(text))
    except _Rejected as exc:
        raise PipelineError([exc.issue()], source) from None
    walker = Walker(recorded=recorded)
    try:
        pipeline = read_pipeline(walker, root)
    except WalkAborted:
        pipeline = None
    if pipeline is None:
        raise PipelineError(walker.issues, source)
    return pipeline


class _Rejected(Exception):
    """The text was rejected as a whole, before it could be walked."""

    def __init__(self, message: str, mark: Mark | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark

    def issue(self) -> PipelineIssue:
        if self.mark is None:
            return PipelineIssue("", self.message, None, None)
        return PipelineIssue("", self.message, self.mark.line + 1, self.mark.column + 1)


def _decode(text: str | bytes) -> str:
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_TEXT_BYTES:
        raise _Rejected(f"pipeline too large ({size} bytes > {MAX_TEXT_BYTES} bytes, 1 MiB)")
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 text at byte {exc.start}"
        raise _Rejected(message, _byte_mark(text, exc.start)) from None


def _byte_mark(data: bytes, offset: int) -> Mark:
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace"))
    return yaml.Mark("", offset, data.count(b"\n", 0, offset), column, None, 0)


def _text_mark(text: str, index: int) -> Mark:
    line_start = text.rfind("\n", 0, index) + 1
    return yaml.Mark("", index, text.count("\n", 0, index), index - line_start, None, 0)


def _compose(text: str) -> Node:
    """The document's root node; YAML errors become _Rejected with their position."""
    try:
        return _compose_single(text)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except yaml.reader.ReaderError as exc:
        mark = _text_mark(text, int(exc.position))
        message = f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}"
        raise _Rejected(message, mark) from None
    except yaml.YAMLError as exc:
        raise _Rejected(f"invalid YAML: {exc}") from None


_UNQUOTED_COLON = "mapping values are not allowed here"
_UNQUOTED_COLON_HINT = "a value containing ': ' must be quoted, or written as a block with |"


def _syntax_error(exc: yaml.MarkedYAMLError) -> _Rejected:
    # PyYAML's context ("while scanning a quoted scalar") tells what it was reading; the problem
    # ("found unexpected end of stream") and its mark tell what went wrong and where.
    parts = [part for part in (exc.context, exc.problem) if part]
    if exc.problem == _UNQUOTED_COLON:
        # Nearly always a plain value with ": " in it (`run: echo "FAIL: x"`), which YAML reads
        # as a second key on the line; PyYAML's words alone do not say how to write it.
        parts.append(_UNQUOTED_COLON_HINT)
    message = "invalid YAML: " + (": ".join(parts) or "syntax error")
    return _Rejected(message, exc.problem_mark or exc.context_mark)


def _compose_single(text: str) -> Node:
    if _FastLoader is not None:
        try:
            return _compose_with(_FastLoader(text))
        except (yaml.YAMLError, _Rejected):
            # libyaml words its errors its own way and gives marks of its own type: the pure
            # parser, run again on the text, says what is wrong as the messages always have.
            pass
    return _compose_with(_GuardedLoader(text))


def _compose_with(loader: _Loader) -> Node:
    try:
        loader.check_node()  # consumes the stream start
        node = None if loader.check_event(StreamEndEvent) else loader.compose_document()
        if node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG):
            raise _Rejected("pipeline is empty", None if node is None else node.start_mark)
        if not loader.check_event(StreamEndEvent):
            message = "expected a single YAML document, found more than one"
            raise _Rejected(message, loader.next_event_mark())
        return node
    finally:
        loader.dispose()


class _Guard(Composer):
    """A composer that refuses documents too deep or too big to be a pipeline.

    PyYAML composes recursively, so a deeply nested document would otherwise end in RecursionError,
    and a long one would be composed in full before the walk could reject it.
    """

    _depth = 0
    _composed = 0

    def next_event_mark(self) -> Mark | None:
        # The stubs leave peek_event unannotated; binding it to a typed callable keeps mypy strict.
        peek: Callable[[], Event] = self.peek_event  # type: ignore[attr-defined]
        mark = peek().start_mark
        return mark if isinstance(mark, yaml.Mark) else None

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                message = f"document nested too deeply (more than {MAX_DEPTH} levels)"
                raise _Rejected(message, self.next_event_mark())
            if self._composed > MAX_YAML_NODES:
                message = f"too many YAML nodes (more than {MAX_YAML_NODES})"
                raise _Rejected(message, self.next_event_mark())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _GuardedLoader(_Guard, yaml.SafeLoader):
    """PyYAML's pure scanner and parser under the guarded composer: its messages are the ones
    users see for a document that does not parse."""


class _Loader(Protocol):
    """What composing needs of a loader, whichever parser is under it."""

    def check_node(self) -> bool: ...
    def check_event(self, *choices: type[Event]) -> bool: ...
    def compose_document(self) -> Node | None: ...
    def next_event_mark(self) -> Mark | None: ...
    def dispose(self) -> None: ...


_FastLoader: Callable[[str], _Loader] | None = None
if yaml.__with_libyaml__:  # PyPI's wheels have it; a source build without libyaml may not
    from yaml._yaml import CParser

    class _CParsedLoader(_Guard, CParser, SafeConstructor, Resolver):
        """The guarded composer over libyaml's scanner and parser, about 2.5 times faster than
        PyYAML's pure ones (the coordinator parses every submitted pipeline)."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)

    _FastLoader = _CParsedLoader
