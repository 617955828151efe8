"""Reader for the top-level `on:` key (DESIGN §4.2): pushes and schedules that start builds.

Same contract as `values`: problems are reported with their position and a fallback returned.
`on:` absent means a push to any branch or tag builds; `on:` given builds only what it lists.
"""

from __future__ import annotations

from yaml.nodes import Node, ScalarNode

from conveyor.pipeline.gates import read_globs
from conveyor.pipeline.issues import quote
from conveyor.pipeline.limits import MAX_CRON_CHARS, MAX_GLOB_CHARS, MAX_SCHEDULES
from conveyor.pipeline.model import ANY_PUSH, PushTrigger, ScheduleTrigger, Triggers
from conveyor.pipeline.nodes import NULL_TAG, Section, Walker, item
from conveyor.pipeline.triggers import cron_problem

ON_KEYS = ("push", "schedule")
PUSH_KEYS = ("branches", "tags")
SCHEDULE_KEYS = ("cron", "branch")


def read_on(w: Walker, node: Node, path: str) -> Triggers:
    section = w.section(node, path, ON_KEYS) or Section(w, path)
    # `on:` without `push` turns push builds off: `on: {schedule: ...}` builds on schedule only.
    return Triggers(
        push=section.get("push", _push, None),
        schedules=section.get("schedule", _schedules, ()),
    )


def _push(w: Walker, node: Node, path: str) -> PushTrigger:
    # `push:` with nothing under it reads as "on push", as it would in other CI systems.
    if isinstance(node, ScalarNode) and node.tag == NULL_TAG:
        w.visit(node, path)
        return ANY_PUSH
    section = w.section(node, path, PUSH_KEYS)
    if section is None or not section.fields:
        return ANY_PUSH
    return PushTrigger(
        branches=section.get("branches", read_globs, ()),
        tags=section.get("tags", read_globs, ()),
    )


def _schedules(w: Walker, node: Node, path: str) -> tuple[ScheduleTrigger, ...]:
    items = w.sequence(node, path)
    if items is None:
        return ()
    if len(items) > MAX_SCHEDULES:
        w.report(path, f"too many schedules ({len(items)} > {MAX_SCHEDULES})", node)
        return ()
    schedules: list[ScheduleTrigger] = []
    for index, entry_node in enumerate(items):
        entry_path = item(path, index)
        entry = _schedule(w, entry_node, entry_path)
        if entry is None:
            continue
        if entry in schedules:
            w.report(entry_path, "duplicate schedule (same cron and branch)", entry_node)
            continue
        schedules.append(entry)
    return tuple(schedules)


def _schedule(w: Walker, node: Node, path: str) -> ScheduleTrigger | None:
    section = w.section(node, path, SCHEDULE_KEYS, required=("cron",))
    if section is None:
        return None
    cron = section.get("cron", _cron, None)
    branch = section.get("branch", _branch, None)
    if cron is None or (branch is None and section.has("branch")):
        return None  # reported; not read as another entry (of the default branch)
    return ScheduleTrigger(cron, branch)


def _cron(w: Walker, node: Node, path: str) -> str | None:
    cron = w.string(node, path)
    if cron is None:
        return None
    if len(cron) > MAX_CRON_CHARS:
        w.report(path, f"cron expression too long ({len(cron)} > {MAX_CRON_CHARS})", node)
        return None
    problem = cron_problem(cron)
    if problem is not None:
        w.report(path, problem, node)
        return None
    return " ".join(cron.split())


def _branch(w: Walker, node: Node, path: str) -> str | None:
    """A branch name as git takes it: one word, not an option, not a glob."""
    branch = w.string(node, path)
    if branch is None:
        return None
    bad = (
        not branch
        or branch.startswith("-")
        or len(branch) > MAX_GLOB_CHARS
        or any(char.isspace() or char in "*?[" for char in branch)
    )
    if bad:
        rule = f"a branch name, at most {MAX_GLOB_CHARS} characters, no spaces or '*?['"
        w.report(path, f"invalid branch {quote(branch)} ({rule})", node)
        return None
    return branch
