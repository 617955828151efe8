"""Listing builds by state, pipeline name and branch: the store's query (on SQLite and on
PostgreSQL, as every store test) and the checks of what a client sends."""

from __future__ import annotations

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus
from coordinator.config import MAX_REF_NAME_BYTES
from coordinator.domain.build_filter import build_filter
from coordinator.domain.records import BuildFilter
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.policy.conditions import BuildContext
from coordinator.store import Store


def _pipeline(name: str) -> str:
    return f"name: {name}\nimage: img\njobs:\n  only:\n    steps: [{{run: x}}]\n"


def _submit(store: Store, name: str, branch: str | None = None) -> int:
    text = _pipeline(name)
    return store.builds.create(
        name=name,
        pipeline_yaml=text,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(load_pipeline(text), {}),
        context=BuildContext("push", branch=branch),
    )


def _ids(store: Store, limit: int, **only: object) -> list[int]:
    return [b.id for b in store.builds.list(limit, BuildFilter(**only))]  # type: ignore[arg-type]


def test_the_store_lists_only_the_builds_the_filter_keeps(store: Store) -> None:
    shop_main = _submit(store, "shop", "main")
    shop_dev = _submit(store, "shop", "dev")
    docs_main = _submit(store, "docs", "main")
    canceled = _submit(store, "shop", "main")
    store.builds.cancel(canceled)
    assert _ids(store, 10) == [canceled, docs_main, shop_dev, shop_main]
    assert _ids(store, 10, name="shop") == [canceled, shop_dev, shop_main]
    assert _ids(store, 10, branch="main") == [canceled, docs_main, shop_main]
    assert _ids(store, 10, name="shop", branch="main") == [canceled, shop_main]
    assert _ids(store, 10, statuses=(BuildStatus.CANCELED,)) == [canceled]
    queued = (BuildStatus.QUEUED,)
    assert _ids(store, 10, statuses=queued, name="shop") == [shop_dev, shop_main]
    either = (BuildStatus.QUEUED, BuildStatus.CANCELED)
    assert _ids(store, 10, statuses=either, branch="main") == [canceled, docs_main, shop_main]
    assert _ids(store, 10, name="nothing") == []


def test_the_limit_counts_the_builds_that_pass_the_filter(store: Store) -> None:
    wanted = [_submit(store, "shop") for _ in range(3)]
    for _ in range(3):
        _submit(store, "docs")
    # The three newest builds are all docs': filtering after the limit would list none.
    assert _ids(store, 2, name="shop") == [wanted[2], wanted[1]]


def test_wire_values_become_a_filter() -> None:
    only = build_filter(["failed", "canceled", "failed"], "shop", "")
    assert only == BuildFilter((BuildStatus.FAILED, BuildStatus.CANCELED), "shop", None)
    assert build_filter([]) == BuildFilter()


@pytest.mark.parametrize(
    ("statuses", "name", "branch", "error"),
    [
        (["done"], "", "", "status: unknown build state 'done' (use queued, running,"),
        (["waiting"], "", "", "status: unknown build state 'waiting'"),
        ([], "n" * (MAX_REF_NAME_BYTES + 1), "", "name: longer than"),
        ([], "", "b" * (MAX_REF_NAME_BYTES + 1), "branch: longer than"),
    ],
)
def test_wrong_wire_values_are_refused_naming_the_field(
    statuses: list[str], name: str, branch: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(")):
        build_filter(statuses, name, branch)
