"""Readers for the continuous-delivery keys of a job: `environment` and `concurrency` (DESIGN §4.1).

Like the other readers they report problems with their position and return a fallback; the
model is only built when nothing was reported.
"""

from __future__ import annotations

import difflib
from urllib.parse import urlsplit

from yaml.nodes import MappingNode, Node, ScalarNode

from conveyor.pipeline.issues import quote
from conveyor.pipeline.limits import MAX_URL_CHARS
from conveyor.pipeline.model import CONCURRENCY_ORDERS, Concurrency, Environment, JobDef
from conveyor.pipeline.nodes import Section, Walker, describe, join
from conveyor.pipeline.values import NAME_RE, NAME_RULE

ENVIRONMENT_KEYS = ("name", "url")
CONCURRENCY_KEYS = ("group", "order")
_URL_SCHEMES = ("http", "https")


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
        matches = difflib.get_close_matches(value, CONCURRENCY_ORDERS, n=1)
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
