"""Readers for a job's delivery gates (DESIGN §4.1): `approval` and `when`.

Same contract as `values`: each reader reports to the walker and returns a usable fallback.
"""

from __future__ import annotations

from yaml.nodes import Node

from conveyor.pipeline.issues import closest, quote
from conveyor.pipeline.limits import MAX_CONDITION_GLOBS, MAX_GLOB_CHARS, MAX_PROMPT_CHARS
from conveyor.pipeline.model import BUILD_EVENTS, Approval, Condition
from conveyor.pipeline.nodes import Section, Walker, item
from conveyor.pipeline.values import read_timeout

APPROVAL_KEYS = ("prompt", "roles", "timeout")
CONDITION_KEYS = ("branch", "tag", "event")
ROLES = ("viewer", "developer", "deployer", "admin")
"""Token roles, lowest first: each admits what the ones before it do."""

DEFAULT_ROLES = ("deployer",)


def read_approval(w: Walker, node: Node, path: str) -> Approval:
    section = w.section(node, path, APPROVAL_KEYS, required=("prompt",)) or Section(w, path)
    return Approval(
        prompt=section.get("prompt", _prompt, ""),
        roles=section.get("roles", _roles, DEFAULT_ROLES),
        timeout_s=section.get("timeout", read_timeout, None),
    )


def _prompt(w: Walker, node: Node, path: str) -> str:
    prompt = w.string(node, path)
    if prompt is None:
        return ""
    if not prompt.strip():
        w.report(path, "approval prompt is empty", node)
    elif len(prompt) > MAX_PROMPT_CHARS:
        w.report(path, f"prompt too long ({len(prompt)} > {MAX_PROMPT_CHARS} characters)", node)
    return prompt


def _roles(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    items = w.sequence(node, path)
    if items is None:
        return DEFAULT_ROLES
    if not items:
        w.report(path, f"no roles (allowed: {', '.join(ROLES)})", node)
    roles: list[str] = []
    for index, role_node in enumerate(items):
        role_path = item(path, index)
        role = _known(w, role_node, role_path, ROLES, "role")
        if role is not None and role in roles:
            w.report(role_path, f"duplicate role {quote(role)}", role_node)
        elif role is not None:
            roles.append(role)
    return tuple(roles)


def read_condition(w: Walker, node: Node, path: str) -> Condition:
    section = w.section(node, path, CONDITION_KEYS) or Section(w, path)
    return Condition(
        branch=section.get("branch", read_globs, ()),
        tag=section.get("tag", read_globs, ()),
        event=section.get("event", _events, ()),
    )


def read_globs(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    """A bounded list of branch or tag globs (`when:` and `on: push:` share it)."""
    items = _bounded(w, node, path)
    globs = []
    for index, glob_node in enumerate(items):
        glob_path = item(path, index)
        glob = w.string(glob_node, glob_path)
        if glob is None:
            continue
        if not glob:
            w.report(glob_path, "empty pattern", glob_node)
        elif len(glob) > MAX_GLOB_CHARS:
            message = f"pattern too long ({len(glob)} > {MAX_GLOB_CHARS} characters)"
            w.report(glob_path, message, glob_node)
        globs.append(glob)
    return tuple(globs)


def _events(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    events: list[str] = []
    for index, event_node in enumerate(_bounded(w, node, path)):
        event = _known(w, event_node, item(path, index), BUILD_EVENTS, "event")
        if event is not None and event not in events:
            events.append(event)
    return tuple(events)


def _bounded(w: Walker, node: Node, path: str) -> list[Node]:
    items = w.sequence(node, path)
    if items is None:
        return []
    if len(items) > MAX_CONDITION_GLOBS:
        w.report(path, f"too many patterns ({len(items)} > {MAX_CONDITION_GLOBS})", node)
        return []
    return items


def _known(w: Walker, node: Node, path: str, allowed: tuple[str, ...], kind: str) -> str | None:
    value = w.string(node, path)
    if value is None or value in allowed:
        return value
    matches = closest(value, allowed)
    hint = f"did you mean {quote(matches[0])}? " if matches else ""
    w.report(path, f"unknown {kind} {quote(value)} ({hint}allowed: {', '.join(allowed)})", node)
    return None
