"""The pipeline format (DESIGN §4): reads a composed YAML node tree into the model.

Every value is checked where it is read and reported with its position; checks that span jobs
(`needs`, cycles) run once all jobs are read. A model is only built when nothing was
reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode

from conveyor.pipeline.delivery import (
    check_job_delivery,
    read_concurrency,
    read_environment,
    read_secrets,
)
from conveyor.pipeline.gates import read_approval, read_condition
from conveyor.pipeline.graph import find_cycles
from conveyor.pipeline.isolation import read_bool, read_user
from conveyor.pipeline.issues import closest, quote
from conveyor.pipeline.limits import MAX_JOBS, MAX_NEEDS, MAX_RUN_BYTES, MAX_STEPS_PER_JOB
from conveyor.pipeline.model import ArtifactRule, JobDef, Pipeline, RetryRule, StepDef, Triggers
from conveyor.pipeline.nodes import Section, Walker, item, join
from conveyor.pipeline.trigger_keys import read_on
from conveyor.pipeline.values import (
    NAME_RE,
    NAME_RULE,
    read_artifacts,
    read_env,
    read_image,
    read_labels,
    read_retry,
    read_source,
    read_timeout,
)

PIPELINE_KEYS = ("name", "image", "env", "source", "on", "jobs")
JOB_KEYS = (
    "image",
    "labels",
    "env",
    "steps",
    "needs",
    "artifacts",
    "timeout",
    "retry",
    "approval",
    "when",
    "environment",
    "concurrency",
    "secrets",
    "privileged",
    "user",
    "interruptible",
)
STEP_KEYS = ("name", "run", "image", "env", "timeout", "user")


@dataclass
class _StepDraft:
    step: StepDef
    path: str
    node: Node
    name_node: Node | None


@dataclass
class _Need:
    name: str
    path: str
    node: Node


@dataclass
class _JobDraft:
    job: JobDef
    path: str
    needs_node: Node | None
    needs: list[_Need]
    steps: list[_StepDraft]


def read_pipeline(w: Walker, root: Node) -> Pipeline | None:
    """The pipeline in `root`, or None if anything was reported to `w`."""
    section = w.section(root, "", PIPELINE_KEYS, required=("name", "jobs"))
    if section is None:
        return None
    name = section.get("name", _pipeline_name, "")
    image = section.get("image", read_image, None)
    env: dict[str, str] = section.get("env", read_env, {})
    jobs: list[_JobDraft] = section.get("jobs", _jobs, [])
    source = section.get("source", read_source, None)
    on = section.get("on", read_on, Triggers())
    _check_needs(w, jobs)
    if w.issues:
        return None
    return Pipeline(
        name=name,
        image=image,
        env=env,
        jobs=tuple(job.job for job in jobs),
        source=source,
        on=on,
    )


# -- jobs ----------------------------------------------------------------------------------------


def _jobs(w: Walker, node: Node, path: str) -> list[_JobDraft]:
    pairs = w.mapping(node, path)
    if pairs is None:
        return []
    if not pairs:
        w.report(path, "pipeline has no jobs", node)
    if len(pairs) > MAX_JOBS:
        w.report(path, f"too many jobs ({len(pairs)} > {MAX_JOBS})", node)
        return []
    drafts = []
    for name, key_node, value_node in pairs:
        if not NAME_RE.fullmatch(name):
            w.report(path, f"invalid job name {quote(name)} ({NAME_RULE})", key_node)
        drafts.append(_job(w, name, key_node, value_node, join(path, name)))
    return drafts


def _job(w: Walker, name: str, key_node: Node, node: Node, path: str) -> _JobDraft:
    # A job whose body is broken still gets a draft, so `needs` naming it is not also reported.
    section = _job_section(w, node, path, key_node)
    steps: list[_StepDraft] = section.get("steps", _steps, [])
    needs: list[_Need] = section.get("needs", _needs, [])
    job = JobDef(
        name=name,
        image=section.get("image", read_image, None),
        labels=section.get("labels", read_labels, {}),
        env=section.get("env", read_env, {}),
        steps=tuple(step.step for step in steps),
        needs=tuple(need.name for need in needs),
        artifacts=section.get("artifacts", read_artifacts, ArtifactRule()),
        timeout_s=section.get("timeout", read_timeout, None),
        retry=section.get("retry", read_retry, RetryRule()),
        approval=section.get("approval", read_approval, None),
        when=section.get("when", read_condition, None),
        environment=section.get("environment", read_environment, None),
        concurrency=section.get("concurrency", read_concurrency, None),
        secrets=section.get("secrets", read_secrets, ()),
        privileged=section.get("privileged", read_bool, False),
        user=section.get("user", read_user, None),
        interruptible=section.get("interruptible", read_bool, False),
    )
    check_job_delivery(w, job, join(path, "concurrency"), section.node("concurrency"))
    return _JobDraft(job, path, section.node("needs"), needs, steps)


def _job_section(w: Walker, node: Node, path: str, key_node: Node) -> Section:
    # A gate (`approval`) runs nothing, so it has no steps; every other job needs them.
    is_gate = isinstance(node, MappingNode) and any(
        isinstance(key, ScalarNode) and key.value == "approval" for key, _ in node.value
    )
    required = () if is_gate else ("steps",)
    section = w.section(node, path, JOB_KEYS, required=required, where=key_node)
    if section is None:
        return Section(w, path)
    for key in ("steps", "secrets"):
        if is_gate and section.has(key):
            message = f"a job with 'approval' is a gate and cannot have {quote(key)}"
            w.report(join(path, key), message, section.fields[key][0])
    return section


def _needs(w: Walker, node: Node, path: str) -> list[_Need]:
    items = w.sequence(node, path)
    if items is None:
        return []
    if len(items) > MAX_NEEDS:
        w.report(path, f"too many needs ({len(items)} > {MAX_NEEDS})", node)
        return []
    needs: list[_Need] = []
    for index, need_node in enumerate(items):
        need_path = item(path, index)
        name = w.string(need_node, need_path)
        if name is None:
            continue
        if any(need.name == name for need in needs):
            w.report(need_path, f"duplicate need {quote(name)}", need_node)
            continue
        needs.append(_Need(name, need_path, need_node))
    return needs


# -- steps ---------------------------------------------------------------------------------------


def _steps(w: Walker, node: Node, path: str) -> list[_StepDraft]:
    items = w.sequence(node, path)
    if items is None:
        return []
    if not items:
        w.report(path, "job has no steps", node)
    if len(items) > MAX_STEPS_PER_JOB:
        w.report(path, f"too many steps ({len(items)} > {MAX_STEPS_PER_JOB})", node)
        return []
    drafts = []
    for index, step_node in enumerate(items):
        draft = _step(w, step_node, item(path, index), index + 1)
        if draft is not None:
            drafts.append(draft)
    _check_step_names(w, drafts)
    return drafts


def _step(w: Walker, node: Node, path: str, position: int) -> _StepDraft | None:
    section = w.section(node, path, STEP_KEYS, required=("run",))
    if section is None:
        return None
    name = section.get("name", _step_name, None)
    step = StepDef(
        name=name or f"step-{position}",
        run=section.get("run", _run, ""),
        image=section.get("image", read_image, None),
        env=section.get("env", read_env, {}),
        timeout_s=section.get("timeout", read_timeout, None),
        user=section.get("user", read_user, None),
    )
    return _StepDraft(step, path, node, section.node("name"))


def _check_step_names(w: Walker, drafts: list[_StepDraft]) -> None:
    # Default names count too: an explicit "step-1" on the second step clashes with the first.
    seen: set[str] = set()
    for draft in drafts:
        name = draft.step.name
        if name in seen:
            message = f"duplicate step name {quote(name)}"
            if draft.name_node is None:
                w.report(draft.path, message, draft.node)
            else:
                w.report(join(draft.path, "name"), message, draft.name_node)
        seen.add(name)


def _step_name(w: Walker, node: Node, path: str) -> str | None:
    name = w.string(node, path)
    if name is not None and not NAME_RE.fullmatch(name):
        w.report(path, f"invalid step name {quote(name)} ({NAME_RULE})", node)
    return name


def _run(w: Walker, node: Node, path: str) -> str:
    script = w.string(node, path)
    if script is None:
        return ""
    size = len(script.encode("utf-8", "surrogatepass"))
    if not script.strip():
        w.report(path, "run script is empty", node)
    elif size > MAX_RUN_BYTES:
        w.report(path, f"run script too long ({size} bytes > {MAX_RUN_BYTES})", node)
    return script


# -- the pipeline's own values ---------------------------------------------------------------------


def _pipeline_name(w: Walker, node: Node, path: str) -> str:
    name = w.string(node, path)
    if name is not None and not name.strip():
        w.report(path, "pipeline name is empty", node)
    return name or ""


# -- checks across jobs --------------------------------------------------------------------------


def _check_needs(w: Walker, jobs: list[_JobDraft]) -> None:
    # A dict rather than a list: ordered for suggestions, constant-time for membership.
    names = dict.fromkeys(job.job.name for job in jobs)
    graph = {job.job.name: _known_needs(w, job, names) for job in jobs}
    by_name = {job.job.name: job for job in jobs}
    for cycle in find_cycles(graph):
        first = by_name[cycle[0]]
        message = f"dependency cycle: {' -> '.join(cycle)}"
        w.report(join(first.path, "needs"), message, first.needs_node)


def _known_needs(w: Walker, job: _JobDraft, names: dict[str, None]) -> list[str]:
    known = []
    for need in job.needs:
        if need.name == job.job.name:
            w.report(need.path, f"job {quote(need.name)} cannot need itself", need.node)
        elif need.name not in names:
            hint = _suggestion(need.name, names, job.job.name)
            message = f"unknown job {quote(need.name)}{hint}"
            w.report(need.path, message, need.node)
        else:
            known.append(need.name)
    return known


def _suggestion(name: str, names: dict[str, None], own_name: str) -> str:
    candidates = [candidate for candidate in names if candidate != own_name]
    matches = closest(name, candidates)
    return f" (did you mean {quote(matches[0])}?)" if matches else ""
