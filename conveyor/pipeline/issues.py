"""What a rejected pipeline reports: one PipelineIssue per problem, gathered in a PipelineError."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineIssue:
    path: str
    """Where in the document, e.g. "jobs.test.needs[0]"; "" for the document as a whole."""
    message: str
    line: int | None
    """1-based."""
    column: int | None
    """1-based."""

    def format(self, source: str) -> str:
        """`source:line:column: path: message`, leaving out the parts that are unknown."""
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = f"{self.path}: " if self.path else ""
        return f"{where}: {prefix}{self.message}"


_QUOTE_LIMIT = 80


def closest(word: str, choices: Iterable[str]) -> list[str]:
    """The one choice `word` was likeliest meant to be, if any is close (difflib's measure)."""
    import difflib  # only a pipeline with a mistake needs it: not every `conveyor run`

    return difflib.get_close_matches(word, list(choices), n=1)


def quote(value: object) -> str:
    """repr() of a user-supplied value for a message, shortened so a huge key cannot flood it."""
    text = repr(value)
    if len(text) <= _QUOTE_LIMIT:
        return text
    return f"{text[: _QUOTE_LIMIT - 4]}...{text[0]}"


def _position(issue: PipelineIssue) -> tuple[int, int]:
    # Issues without a position concern the whole text (size, encoding): list them first.
    return (issue.line or 0, issue.column or 0)


class PipelineError(ValueError):
    """A pipeline that cannot be accepted; str() gives one compiler-style line per issue."""

    issues: list[PipelineIssue]
    source: str

    def __init__(self, issues: Iterable[PipelineIssue], source: str = "pipeline.yml") -> None:
        # sorted() is stable, so issues on the same spot keep the order they were found in.
        self.issues = sorted(issues, key=_position)
        self.source = source
        super().__init__("\n".join(issue.format(source) for issue in self.issues))

    def __reduce__(self) -> tuple[type[PipelineError], tuple[list[PipelineIssue], str]]:
        # The default would call PipelineError(message) on unpickling, which has the wrong shape.
        return (type(self), (self.issues, self.source))
