"""Readers for the continuous-delivery keys of a job: `environment`, `concurrency` and `secrets`
(DESIGN §4.1).

Like the other readers they report problems with their position and return a fallback; the
model is only built when nothing was reported.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from yaml.nodes import MappingNode, Node, ScalarNode

from conveyor.pipeline.issues import closest, quote
from conveyor.pipeline.limits import MAX_SECRET_NAME_CHARS, MAX_SECRETS_PER_JOB, MAX_URL_CHARS
from conveyor.pipeline.model import CONCURRENCY_ORDERS, Concurrency, Environment, JobDef
from conveyor.pipeline.nodes import Section, Walker, describe, item, join
from conveyor.pipeline.values import NAME_RE, NAME_RULE, reserved_env_problem

ENVIRONMENT_KEYS = ("name", "url")
CONCURRENCY_KEYS = ("group", "order")
_URL_SCHEMES = ("http", "https")

SECRET_NAME_RE = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_SECRET_NAME_CHARS - 1}}}")
"""A secret becomes an environment variable of the same name in the job's steps."""
SECRET_NAME_RULE = (
    f"use 1-{MAX_SECRET_NAME_CHARS} letters, digits and '_', not starting with a digit"
)


def secret_name_problem(name: str) -> str | None:
    """Why `name` cannot name a secret (None: it can); the pipeline and `secret set` share it."""
    if not SECRET_NAME_RE.fullmatch(name):
        return f"invalid secret name {quote(name)} ({SECRET_NAME_RULE})"
    return None


def read_secrets(w: Walker, node: Node, path: str) -> tuple[str, ...]:
    """`secrets: [NAME, ...]`: the stored secrets the job's steps get as environment variables;
    whether each exists is the coordinator's to say at submission."""
    items = w.sequence(node, path)
    if items is None:
        return ()
    if len(items) > MAX_SECRETS_PER_JOB:
        w.report(path, f"too many secrets ({len(items)} > {MAX_SECRETS_PER_JOB})", node)
        return ()
    names: list[str] = []
    for index, name_node in enumerate(items):
        name = w.string(name_node, item(path, index))
        if name is None:
            continue
        problem = secret_name_problem(name)
        if problem is None and not w.recorded:
            problem = reserved_env_problem(name)
        if problem is not None:
            w.report(item(path, index), problem, name_node)
        elif name in names:
            w.report(item(path, index), f"duplicate secret {quote(name)}", name_node)
        else:
            names.append(name)
    return tuple(names)


def read_environment(w: Walker, node: Node, path: str) -> Environment | None:
    """`environment: NAME` or `environment: {name: NAME, url: URL}`."""
    if isinstance(node, ScalarNode):
        name = _name(w, node, path, "environment")
        return Environment(name) if name else None
    if not isinstance(node, MappingNode):
        w.visit(node, path)
        expected = "an environment name or a mapping with 'name' and 'url'"
        w.report(path, f"expected {expected}, got {describe(node)}", node)
        return None
    section = w.section(node, path, ENVIRONMENT_KEYS, required=("name",)) or Section(w, path)
    name = section.get("name", _environment_name, "")
    url = section.get("url", _url, None)
    return Environment(name, url) if name else None


def read_concurrency(w: Walker, node: Node, path: str) -> Concurrency | None:
    """`concurrency: {group: NAME, order: oldest_first | newest_first}`."""
    section = w.section(node, path, CONCURRENCY_KEYS, required=("group",))
    if section is None:
        return None
    group = section.get("group", _group_name, "")
    order = section.get("order", _order, CONCURRENCY_ORDERS[0])
    return Concurrency(group, order) if group else None


def _environment_name(w: Walker, node: Node, path: str) -> str:
    return _name(w, node, path, "environment")


def _group_name(w: Walker, node: Node, path: str) -> str:
    return _name(w, node, path, "group")


def _name(w: Walker, node: Node, path: str, what: str) -> str:
    name = w.string(node, path)
    if name is None:
        return ""
    if not NAME_RE.fullmatch(name):
        w.report(path, f"invalid {what} name {quote(name)} ({NAME_RULE})", node)
        return ""
    return name


def _url(w: Walker, node: Node, path: str) -> str | None:
    url = w.string(node, path)
    if url is None:
        return None
    if len(url) > MAX_URL_CHARS:
        w.report(path, f"url too long ({len(url)} > {MAX_URL_CHARS} characters)", node)
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    bad_text = any(char.isspace() or ord(char) < 0x20 for char in url)
    if parts is None or parts.scheme not in _URL_SCHEMES or not parts.hostname or bad_text:
        w.report(path, f"invalid url {quote(url)} (expected an http:// or https:// URL)", node)
        return None
    return url


def _order(w: Walker, node: Node, path: str) -> str:
    value = w.string(node, path)
    if value is None:
        return CONCURRENCY_ORDERS[0]
    if value not in CONCURRENCY_ORDERS:
        matches = closest(value, CONCURRENCY_ORDERS)
        hint = f"; did you mean {quote(matches[0])}?" if matches else ""
        allowed = ", ".join(CONCURRENCY_ORDERS)
        w.report(path, f"unknown value {quote(value)} (allowed: {allowed}{hint})", node)
        return CONCURRENCY_ORDERS[0]
    return value


def check_job_delivery(w: Walker, job: JobDef, path: str, concurrency_node: Node | None) -> None:
    """A deployment job holds its environment's lock: a `concurrency` beside `environment` may
    choose the order, not another group (the job would then run beside other deployments)."""
    env, lock = job.environment, job.concurrency
    if env is None or lock is None or lock.group == env.name:
        return
    message = (
        f"a deployment job's group must be its environment {quote(env.name)}"
        f" (got {quote(lock.group)}); set only 'order' beside 'environment'"
    )
    w.report(join(path, "group"), message, concurrency_node)
