"""Readers for the values the pipeline format shares between levels or nests below a job.

Each reader takes (walker, node, path), reports problems to the walker, and returns a usable
fallback so the caller can keep reading; the model built from fallbacks is thrown away anyway,
because load_pipeline only builds one when nothing was reported.
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.pipeline.durations import HINT, DurationError, parse_duration
from conveyor.pipeline.issues import quote
from conveyor.pipeline.limits import (
    MAX_ENV_VARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_RETRIES,
)
from conveyor.pipeline.model import (
    ARTIFACTS_WHEN,
    RETRY_REASONS,
    ArtifactRule,
    GitSource,
    RetryRule,
)
from conveyor.pipeline.nodes import (
    FLOAT_TAG,
    INT_TAG,
    STR_TAG,
    Section,
    Walker,
    describe,
    item,
    join,
)

ARTIFACT_KEYS = ("paths", "when")
RETRY_KEYS = ("max", "when")
SOURCE_KEYS = ("git", "ref")

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
"""Job, step, environment and lock group names."""
NAME_RULE = "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME_RULE = "use letters, digits and '_', not starting with a digit"
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}")
_LABEL_RULE = "use 1-63 letters, digits, '_', '.', '-' or '/', starting with a letter or digit"
_RETRY_MAX_RE = re.compile(r"[0-9]{1,2}")
# Agents give their labels as k=v,k=v: a value with ',' or '=' is one no agent could offer.
_LABEL_VALUE_FORBIDDEN = (",", "=")


RESERVED_ENV_PREFIX = "CONVEYOR_"
RESERVED_ENV_NAMES = frozenset({"CI"})


def reserved_env_problem(name: str) -> str | None:
    """Why `name` cannot be set by a pipeline, `--env` or a secret (None: it can): every step
    gets `CI` and the `CONVEYOR_*` variables from the build, and they must say what is true."""
    if name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIX):
        return f"{quote(name)} is reserved (CI and CONVEYOR_* are set for every step by conveyor)"
    return None


def label_name_problem(name: str) -> str | None:
    """Why `name` cannot be a label name (None: it can); the rule jobs and agents share."""
    if not _LABEL_RE.fullmatch(name):
        return f"invalid label name {quote(name)} ({_LABEL_RULE})"
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` cannot be a label value (None: it can); the rule jobs and agents share."""
    if len(value) > MAX_LABEL_VALUE_CHARS:
        return f"label value too long ({len(value)} > {MAX_LABEL_VALUE_CHARS} characters)"
    for char in _LABEL_VALUE_FORBIDDEN:
        if char in value:
            return f"label value {quote(value)} contains {char!r} (no agent could offer it)"
    return None


def read_image(w: Walker, node: Node, path: str) -> str | None:
    image = w.string(node, path)
    if image is not None and (not image or any(char.isspace() for char in image)):
        w.report(
            path, f"invalid image {quote(image)} (expected a non-empty name without spaces)", node
        )
    return image


def read_env(w: Walker, node: Node, path: str) -> dict[str, str]:
    pairs = w.mapping(node, path)
    if pairs is None:
        return {}
    if len(pairs) > MAX_ENV_VARS:
        w.report(path, f"too many environment variables ({len(pairs)} > {MAX_ENV_VARS})", node)
        return {}
    env = {}
    for name, key_node, value_node in pairs:
        if not _ENV_NAME_RE.fullmatch(name):
            message = f"invalid environment variable name {quote(name)} ({_ENV_NAME_RULE})"
            w.report(path, message, key_node)
        elif not w.recorded and (reserved := reserved_env_problem(name)) is not None:
            w.report(path, reserved, key_node)
        value = w.scalar(value_node, join(path, name))
        if value is not None:
            env[name] = value
    return env


def read_labels(w: Walker, node: Node, path: str) -> dict[str, str]:
    pairs = w.mapping(node, path)
    if pairs is None:
        return {}
    if len(pairs) > MAX_LABELS:
        w.report(path, f"too many labels ({len(pairs)} > {MAX_LABELS})", node)
        return {}
    labels = {}
    for name, key_node, value_node in pairs:
        name_problem = label_name_problem(name)
        if name_problem is not None:
            w.report(path, name_problem, key_node)
        value = w.scalar(value_node, join(path, name))
        if value is None:
            continue
        value_problem = label_value_problem(value)
        if value_problem is not None:
            w.report(join(path, name), value_problem, value_node)
        labels[name] = value
    return labels


def read_timeout(w: Walker, node: Node, path: str) -> float | None:
    w.visit(node, path)
    if not isinstance(node, ScalarNode) or node.tag not in (STR_TAG, INT_TAG, FLOAT_TAG):
        w.report(path, f"expected a duration ({HINT}), got {describe(node)}", node)
        return None
    try:
        return parse_duration(str(node.value))
    except DurationError as exc:
        w.report(path, str(exc), node)
        return None


# -- artifacts and retry -------------------------------------------------------------------------


def read_artifacts(w: Walker, node: Node, path: str) -> ArtifactRule:
    if isinstance(node, SequenceNode):
        return ArtifactRule(paths=_globs(w, node, path))
    if not isinstance(node, MappingNode):
        w.visit(node, path)
        expected = "a list of paths or a mapping with 'paths' and 'when'"
        w.report(path, f"expected {expected}, got {describe(node)}", node)
        return ArtifactRule()
    section = w.section(node, path, ARTIFACT_KEYS, required=("paths",)) or Section(w, path)
    return ArtifactRule(
        paths=section.get("paths", _globs, ()),
        when=section.get("when", _artifacts_when, "on_success"),
    )


def _globs(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    globs = []
    for index, glob_node in enumerate(w.sequence(node, path) or ()):
        glob_path = item(path, index)
        glob = w.string(glob_node, glob_path)
        if glob is None:
            continue
        # Artifacts are collected from the job's workspace; a pattern must not reach outside it.
        if not glob or glob.startswith("/") or ".." in glob.split("/"):
            message = f"invalid artifact path {quote(glob)} (expected a path in the workspace)"
            w.report(glob_path, message, glob_node)
        globs.append(glob)
    return tuple(globs)


def _artifacts_when(w: Walker, node: Node, path: str) -> str:
    return _choice(w, node, path, ARTIFACTS_WHEN) or "on_success"


def _choice(w: Walker, node: Node, path: str, allowed: tuple[str, ...]) -> str | None:
    value = w.string(node, path)
    if value is not None and value not in allowed:
        w.report(path, f"unknown value {quote(value)} (allowed: {', '.join(allowed)})", node)
        return None
    return value


def read_retry(w: Walker, node: Node, path: str) -> RetryRule:
    section = w.section(node, path, RETRY_KEYS) or Section(w, path)
    rule = RetryRule(
        max=section.get("max", _retry_max, 0),
        when=section.get("when", _retry_when, ()),
    )
    if rule.max > 0 and not section.has("when"):
        # Without reasons nothing would ever be retried; say so rather than ignore `max`.
        message = f"'when' is required when max > 0 (reasons: {', '.join(RETRY_REASONS)})"
        w.report(path, message, node)
    return rule


def _retry_max(w: Walker, node: Node, path: str) -> int:
    w.visit(node, path)
    text = str(node.value) if isinstance(node, ScalarNode) else ""
    if node.tag == INT_TAG and _RETRY_MAX_RE.fullmatch(text) and int(text) <= MAX_RETRIES:
        return int(text)
    got = text if node.tag == INT_TAG and len(text) <= 20 else describe(node)
    w.report(path, f"expected an integer from 0 to {MAX_RETRIES}, got {got}", node)
    return 0


def _retry_when(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    reasons: list[str] = []
    for index, reason_node in enumerate(w.sequence(node, path) or ()):
        reason_path = item(path, index)
        reason = _choice(w, reason_node, reason_path, RETRY_REASONS)
        if reason in reasons:
            w.report(reason_path, f"duplicate reason {quote(reason)}", reason_node)
        elif reason is not None:
            reasons.append(reason)
    return tuple(reasons)


def read_source(w: Walker, node: Node, path: str) -> GitSource | None:
    section = w.section(node, path, SOURCE_KEYS, required=("git",))
    if section is None:
        return None
    url = section.get("git", _git_word, "")
    ref = section.get("ref", _git_word, "HEAD")
    return GitSource(url, ref) if url and ref else None


def _git_word(w: Walker, node: Node, path: str) -> str:
    """A URL or ref handed to git as one argument: never an option, never blank."""
    value = w.string(node, path)
    if value is None:
        return ""
    if not value or value.startswith("-") or any(c.isspace() or c == "\0" for c in value):
        w.report(path, f"invalid value {quote(value)} (no spaces, not starting with '-')", node)
        return ""
    return value
