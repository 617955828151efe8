"""Schema migrations on the session's backend: fresh, baseline, refused; models == migrations."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from conveyor.states import Outcome
from coordinator.domain.notify_records import NewTarget, NotifyEvent, TargetKind
from coordinator.domain.repo_records import RepoRecord
from coordinator.edge.outbound import event_body
from coordinator.store import Store
from coordinator.store.engine import make_engine
from coordinator.store.schema import (
    BASELINE,
    BASELINE_COLUMNS,
    SchemaError,
    head_revision,
    include_object_for,
    migrate,
    target_metadata,
)
from tests.unit.coordinator.test_store import SINGLE, claim_one, submit

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "baseline-datadir"
QUEUE_LABELS = {"pool": "old"}
SPEC = json.dumps(
    {
        "retry_max": 0,
        "retry_when": [],
        "steps": [{"env": {}, "image": "i", "name": "s", "run": "true", "timeout_s": None}],
        "timeout_s": None,
    }
)
KEYS = {"blobs": "sha256", "build_sources": "build_id"} | {
    table: "id" for table in BASELINE_COLUMNS if table not in ("blobs", "build_sources")
}
LABELLED = SINGLE.replace("  only:\n", "  only:\n    labels: {pool: old}\n")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def revision_of(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(MigrationContext.configure(connection).get_current_heads())


def schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": include_object_for(connection.dialect.name),
            },
        )
        return list(compare_metadata(context, target_metadata()))


def at_baseline_without_version(engine: Engine) -> None:
    """What the code before migrations left: the baseline tables and no alembic_version."""
    migrate(engine, BASELINE)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


def execute(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def test_a_fresh_database_gets_every_migration(engine: Engine) -> None:
    migrate(engine)
    assert revision_of(engine) == [head_revision()]
    assert set(BASELINE_COLUMNS) <= set(inspect(engine).get_table_names())


def test_the_models_and_the_migrations_agree(engine: Engine) -> None:
    """A model change without its migration fails here (on each backend)."""
    migrate(engine)
    assert schema_diff(engine) == []


def test_migrating_a_database_at_head_changes_nothing(database_url: str) -> None:
    Store(database_url).close()
    again = Store(database_url)
    try:
        assert revision_of(again.engine) == [head_revision()]
    finally:
        again.close()


def test_coordinators_starting_together_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Store(database_url).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = make_engine(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
    finally:
        engine.dispose()


def _old_rows(engine: Engine) -> None:
    """A build with a queued job and a finished one, an attempt, a step, an agent, an artifact."""
    statements = [
        "INSERT INTO builds VALUES (1, 'b', 'running', 'name: b', 'p.yml', '{}', false, 10, NULL)",
        "INSERT INTO agents VALUES (1, 'a1', '{}', 2, 'h', 'active', 10, 20)",
        "INSERT INTO jobs VALUES (1, 1, 0, 'done', 'succeeded', '[]', '{}', :spec, 100, '', '', 0,"
        " 1, 0, 0)",
        "INSERT INTO jobs VALUES (2, 1, 1, 'later', 'queued', '[]', :labels, :spec, 900, '', '',"
        " NULL, 0, 0, 0)",
        "INSERT INTO jobs VALUES (3, 1, 2, 'sooner', 'queued', '[]', :labels, :spec, 500, '', '',"
        " NULL, 0, 0, 0)",
        "INSERT INTO attempts VALUES (1, 1, 1, 1, 1, 'tok', 'succeeded', '', '', 0, false, 11, 12)",
        "INSERT INTO steps VALUES (1, 1, 0, 's', 'succeeded', 0, 11, 12, 42, 0)",
        "INSERT INTO blobs VALUES ('d1', 8, 12)",
        "INSERT INTO artifacts VALUES (1, 1, 'done', 1, 1, 'out.txt', 'd1', 8, 420, 12)",
        "INSERT INTO build_sources VALUES (1, 'd1', '', '', '', false)",
    ]
    for statement in statements:
        execute(engine, statement, spec=SPEC, labels=json.dumps(QUEUE_LABELS))
    if engine.dialect.name == "postgresql":
        # Explicit ids leave the SERIAL sequences behind; the old code's inserts advanced them.
        for table, key in KEYS.items():
            if key == "id":
                execute(
                    engine,
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)",
                )


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(
                    text(f"SELECT {', '.join(sorted(columns))} FROM {table} ORDER BY {KEYS[table]}")
                )
            ]
            for table, columns in BASELINE_COLUMNS.items()
        }


def test_an_unversioned_baseline_database_is_upgraded_keeping_its_rows(
    engine: Engine, database_url: str
) -> None:
    at_baseline_without_version(engine)
    _old_rows(engine)
    before = _rows(engine)

    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        after = _rows(engine)
        # queued_seq is renumbered in order (jobs 1, 3, 2), the only value a migration changes.
        seq = sorted(BASELINE_COLUMNS["jobs"]).index("queued_seq")
        assert [row[seq] for row in after["jobs"]] == [1, 3, 2]
        strip = [(*row[:seq], *row[seq + 1 :]) for row in after["jobs"]]
        assert strip == [(*row[:seq], *row[seq + 1 :]) for row in before["jobs"]]
        assert {k: v for k, v in after.items() if k != "jobs"} == {
            k: v for k, v in before.items() if k != "jobs"
        }
        assert schema_diff(engine) == []
        # The old queue keeps its order, and a job queued now comes after it.
        newer = submit(store, LABELLED)
        order = [claim_one(store, 1, QUEUE_LABELS) for _ in range(3)]
        assert [(a.build_id, a.job_name) for a in order] == [
            (1, "sooner"),
            (1, "later"),
            (newer, "only"),
        ]
    finally:
        store.close()


def test_an_unversioned_database_missing_a_baseline_column_is_refused(
    engine: Engine, database_url: str
) -> None:
    at_baseline_without_version(engine)
    execute(engine, "ALTER TABLE agents DROP COLUMN mode")
    with pytest.raises(SchemaError) as refused:
        Store(database_url)
    message = str(refused.value)
    assert "agents.mode is missing" in message
    assert "another data dir or an empty database" in message
    assert "\n" not in message
    assert "alembic_version" not in inspect(engine).get_table_names()


def test_a_database_that_is_not_conveyors_is_refused(engine: Engine, database_url: str) -> None:
    execute(engine, "CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(SchemaError, match=r"holds tables \(invoices\) but no Conveyor schema"):
        Store(database_url)


def test_a_database_from_a_newer_conveyor_is_refused(engine: Engine, database_url: str) -> None:
    migrate(engine)
    execute(engine, "UPDATE alembic_version SET version_num = '0999_from_the_future'")
    with pytest.raises(SchemaError) as refused:
        Store(database_url)
    assert "made by a newer Conveyor (revision 0999_from_the_future)" in str(refused.value)
    assert "upgrade Conveyor or use another data dir" in str(refused.value)


def test_the_comparison_sees_a_schema_behind_the_models(engine: Engine) -> None:
    """Guards the test above against comparing nothing: the baseline alone is not the models."""
    migrate(engine, BASELINE)
    assert schema_diff(engine) != []


def test_the_baseline_fixture_is_upgraded_keeping_every_row(tmp_path: Path) -> None:
    """The data dir ca625a3 wrote (SQLite, whatever the session's backend): every row stays."""
    copy, pristine = tmp_path / "conveyor.db", tmp_path / "pristine.db"
    shutil.copy(FIXTURE / "conveyor.db", copy)
    shutil.copy(FIXTURE / "conveyor.db", pristine)  # read as is, never opened by the Store
    old = make_engine(f"sqlite:///{pristine}")
    try:
        before = _rows(old)
    finally:
        old.dispose()
    store = Store(f"sqlite:///{copy}")
    try:
        after = _rows(store.engine)
        assert revision_of(store.engine) == [head_revision()]
        assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in before.items()}
        assert {k: v for k, v in after.items() if k != "jobs"} == {
            k: v for k, v in before.items() if k != "jobs"
        }
        seq = sorted(BASELINE_COLUMNS["jobs"]).index("queued_seq")
        strip = [(*row[:seq], *row[seq + 1 :]) for row in after["jobs"]]
        assert strip == [(*row[:seq], *row[seq + 1 :]) for row in before["jobs"]]
        # Builds 5, 6 and 7 were left queued in that order; a new one queues behind them.
        later = {"executor": "shell", "pool": "later"}
        # (A shell agent takes only jobs that ask for executor=shell.)
        labelled = "  only:\n    labels: {executor: shell, pool: later}\n"
        newer = submit(store, SINGLE.replace("  only:\n", labelled))
        agent = store.agents.register(name="later", labels=later, capacity=4, session_hash="")
        claimed = [claim_one(store, agent.id, later).build_id for _ in range(4)]
        assert claimed == [5, 6, 7, newer]
    finally:
        store.close()


def test_agents_stored_before_credentials_keep_their_rows_and_get_one_later(
    engine: Engine, database_url: str
) -> None:
    """0004 adds each agent's credential hash: earlier agents keep every column, with none."""
    migrate(engine, "0003_bigint_on_postgresql")
    execute(
        engine,
        "INSERT INTO agents (id, name, labels_json, capacity, session_hash, mode,"
        " registered_at_ms, last_seen_ms)"
        " VALUES (1, 'old', '{\"os\": \"linux\"}', 3, 'h', 'paused', 10, 1764000000000)",
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        old = store.agents.find("old")
        assert old is not None
        assert (old.id, old.labels, old.capacity, old.session_hash, old.mode) == (
            1,
            {"os": "linux"},
            3,
            "h",
            "paused",
        )
        assert (old.last_seen_ms, old.credential_hash) == (1764000000000, "")
        again = store.agents.register(
            name="old", labels={}, capacity=1, session_hash="s", credential_hash="c"
        )
        assert (again.id, again.mode, again.credential_hash) == (1, "paused", "c")
        # A later registration that issues nothing keeps the credential.
        kept = store.agents.register(name="old", labels={}, capacity=1, session_hash="t")
        assert kept.credential_hash == "c"
    finally:
        store.close()


def test_builds_whose_source_gc_took_are_marked_collected(
    engine: Engine, database_url: str
) -> None:
    """0005 marks a build collected when its source already was; every other build is not."""
    migrate(engine, "0004_agent_credentials")
    for build_id, collected in ((1, "true"), (2, "false"), (3, None)):
        execute(
            engine,
            "INSERT INTO builds VALUES (:id, 'b', 'succeeded', 'name: b', 'p.yml', '{}', false,"
            " 10, 20)",
            id=build_id,
        )
        if collected is not None:
            execute(
                engine,
                f"INSERT INTO build_sources VALUES (:id, 'd', '', '', '', {collected})",
                id=build_id,
            )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        with engine.connect() as connection:
            marks = connection.execute(text("SELECT id, collected FROM builds ORDER BY id"))
            assert [(row[0], bool(row[1])) for row in marks] == [(1, True), (2, False), (3, False)]
        assert store.builds.get(2).status.value == "succeeded"
    finally:
        store.close()


def test_builds_before_build_context_are_kept_as_manual_ones(
    engine: Engine, database_url: str
) -> None:
    """0006 gives earlier builds event `manual`, no branch and no tag; approvals start empty."""
    migrate(engine, "0005_collected_builds")
    for build_id in (1, 2):
        execute(
            engine,
            "INSERT INTO builds VALUES (:id, 'b', 'succeeded', 'name: b', 'p.yml', '{}', false,"
            " 10, 20, false)",
            id=build_id,
        )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, event, branch, tag FROM builds ORDER BY id"))
            expected = [(build_id, "manual", None, None) for build_id in (1, 2)]
            assert [tuple(row) for row in rows] == expected
            assert connection.execute(text("SELECT count(*) FROM approvals")).scalar() == 0
        build = store.builds.get(2)
        assert build.status.value == "succeeded"
        assert (build.event, build.branch, build.tag) == ("manual", None, None)
    finally:
        store.close()


def test_builds_from_before_deployments_keep_their_rows_and_have_no_deployment_jobs(
    engine: Engine, database_url: str
) -> None:
    """0007 adds only tables: earlier builds and jobs read back as they were, and a new
    deployment job queues and deploys beside them."""
    migrate(engine, "0005_collected_builds")
    execute(
        engine,
        # Ids far from the ones the sequences hand out next (PostgreSQL's do not see these).
        "INSERT INTO builds VALUES (1001, 'b', 'queued', 'name: b', 'p.yml', '{}', false, 10,"
        " NULL, false)",
    )
    execute(
        engine,
        "INSERT INTO jobs VALUES (1001, 1001, 0, 'old', 'queued', '[]', :labels, :spec, 1, '',"
        " '', NULL, 0, 0, 0)",
        labels=json.dumps(QUEUE_LABELS),
        spec=SPEC,
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        assert store.builds.get(1001).jobs[0].status.value == "queued"
        assert store.deployments.environments() == []
        agent = store.agents.register(name="a", labels=QUEUE_LABELS, capacity=1, session_hash="")
        assert claim_one(store, agent.id, QUEUE_LABELS).job_name == "old"
        deploy = SINGLE.replace("  only:\n", "  only:\n    environment: production\n")
        submit(store, deploy)
        other = store.agents.register(name="b", labels={}, capacity=1, session_hash="")
        assert claim_one(store, other.id).job_name == "only"
        assert [env.name for env in store.deployments.environments()] == ["production"]
    finally:
        store.close()


def test_builds_and_deployments_from_before_rollbacks_have_no_redeploys_nor_commit_time(
    engine: Engine, database_url: str
) -> None:
    """0008 adds only nullable columns: earlier builds redeploy nothing, and earlier sources and
    deployments have no commit time (unknown, not made up), so their lead time stays null."""
    migrate(engine, "0007_deployments")
    execute(
        engine,
        "INSERT INTO builds (id, name, status, pipeline_yaml, source_name, env_json,"
        " cancel_requested, created_at_ms, finished_at_ms, collected, event)"
        " VALUES (1001, 'b', 'succeeded', 'name: b', 'p.yml', '{}', false, 10, 20, false,"
        " 'manual')",
    )
    execute(
        engine,
        "INSERT INTO build_sources VALUES (1001, '', 'https://example.com/r.git', 'main',"
        " :commit, false)",
        commit="1f" * 20,
    )
    execute(engine, "INSERT INTO environments VALUES ('production', '')")
    execute(
        engine,
        'INSERT INTO deployments (id, environment, build_id, job_id, job_name, status, "commit",'
        " artifacts_json, approvals_json, actor, started_at_ms, finished_at_ms) VALUES (1001,"
        " 'production', 1001, 1, 'deploy', 'succeeded', :commit, '[]', '[]', 'admin', 11, 19)",
        commit="1f" * 20,
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        assert store.builds.get(1001).redeploys is None
        (deployment,) = store.deployments.deployments("production", 10)
        assert (deployment.commit, deployment.committed_at_ms) == ("1f" * 20, None)
        assert deployment.redeploys is None
    finally:
        store.close()


def test_builds_from_before_tokens_were_started_by_the_server_token(
    engine: Engine, database_url: str
) -> None:
    """0009 adds `builds.started_by` (every earlier build came with the server's token, `admin`)
    and empty `tokens` and `audit_events` tables."""
    migrate(engine, "0008_rollback")
    execute(
        engine,
        "INSERT INTO builds VALUES (1001, 'b', 'succeeded', 'name: b', 'p.yml', '{}', false, 10,"
        " 20, false, 'manual', NULL, NULL, NULL)",
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        build = store.builds.get(1001)
        assert (build.status.value, build.started_by) == ("succeeded", "admin")
        assert store.tokens.list() == []
        assert store.audit.events(10) == []
        store.tokens.create("ci", "developer", "h" * 64, "admin")
        assert [e.action for e in store.audit.events(10)] == ["token_create"]
    finally:
        store.close()


def test_jobs_from_before_secrets_keep_their_rows_and_name_none(
    engine: Engine, database_url: str
) -> None:
    """0010 adds only the secrets table: an earlier queued job (its spec has no `secrets`) is
    claimed as before, with no secrets, and a secret can be set beside it."""
    migrate(engine, "0009_tokens_audit")
    execute(
        engine,
        "INSERT INTO builds VALUES (1001, 'b', 'queued', 'name: b', 'p.yml', '{}', false, 10,"
        " NULL, false, 'manual', NULL, NULL, NULL, 'admin')",
    )
    execute(
        engine,
        "INSERT INTO jobs VALUES (1001, 1001, 0, 'old', 'queued', '[]', :labels, :spec, 1, '',"
        " '', NULL, 0, 0, 0, NULL, NULL)",
        labels=json.dumps(QUEUE_LABELS),
        spec=SPEC,
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        assert store.secrets.list() == []
        store.secrets.put("TOKEN", "", b"sealed", by="admin")
        agent = store.agents.register(name="a", labels=QUEUE_LABELS, capacity=1, session_hash="")
        claimed = claim_one(store, agent.id, QUEUE_LABELS)
        assert (claimed.job_name, claimed.spec.secrets, claimed.sealed_secrets) == ("old", (), ())
    finally:
        store.close()


def test_jobs_queued_before_queue_times_are_claimed_with_no_wait_measured(
    engine: Engine, database_url: str
) -> None:
    """0011 adds a nullable column: a job queued by the earlier code is still claimed, with its
    wait unknown (None, not made up); one queued after has its wait measured."""
    migrate(engine, "0010_secrets")
    execute(
        engine,
        "INSERT INTO builds (id, name, status, pipeline_yaml, source_name, env_json,"
        " cancel_requested, created_at_ms, finished_at_ms, collected, event)"
        " VALUES (1001, 'b', 'queued', 'name: b', 'p.yml', '{}', false, 10, NULL, false,"
        " 'manual')",
    )
    execute(
        engine,
        "INSERT INTO jobs (id, build_id, position, name, status, needs_json, labels_json,"
        " spec_json, queued_seq, reason, message, exit_code, attempt_count, retry_base,"
        " unstarted_requeues) VALUES (1001, 1001, 0, 'old', 'queued', '[]', :labels, :spec, 1,"
        " '', '', NULL, 0, 0, 0)",
        labels=json.dumps(QUEUE_LABELS),
        spec=SPEC,
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        agent = store.agents.register(name="a", labels=QUEUE_LABELS, capacity=1, session_hash="")
        old = claim_one(store, agent.id, QUEUE_LABELS)
        assert (old.job_name, old.queued_for_ms) == ("old", None)
        submit(store, SINGLE)
        other = store.agents.register(name="b", labels={}, capacity=1, session_hash="")
        new = claim_one(store, other.id)
        assert new.job_name == "only" and new.queued_for_ms is not None
        assert 0 <= new.queued_for_ms < 60_000
    finally:
        store.close()


def test_builds_from_before_repositories_read_back_with_no_trigger_or_error(
    engine: Engine, database_url: str
) -> None:
    """0012 adds the repos table and nullable build columns: an earlier build reads back with
    no trigger and no error, and a repository can be added beside it."""
    migrate(engine, "0011_queue_wait")
    execute(
        engine,
        "INSERT INTO builds (id, name, status, pipeline_yaml, source_name, env_json,"
        " cancel_requested, created_at_ms, finished_at_ms, collected, event, branch)"
        " VALUES (1001, 'b', 'queued', 'name: b', 'p.yml', '{}', false, 10, NULL, false,"
        " 'push', 'main')",
    )
    store = Store(database_url)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        old = store.builds.get(1001)
        assert (old.event, old.branch, old.trigger, old.error) == ("push", "main", None, None)
        assert [b.trigger for b in store.builds.list(10)] == [None]
        repo = RepoRecord(
            name="app", url="/r", pipeline_path=".conveyor.yml", poll_s=60.0,
            sealed_secret=None, heads={"refs/heads/main": "a" * 40}, last_check_ms=None,
            last_error="", failures=0, next_check_ms=0, created_at_ms=0, created_by="admin",
        )  # fmt: skip
        store.repos.add(repo)
        assert store.repos.get("app").heads == repo.heads
    finally:
        store.close()


def test_builds_from_before_notifications_tell_no_one_and_later_ones_tell_targets(
    engine: Engine, database_url: str
) -> None:
    """0013 adds only the notification tables: an earlier queued job is claimed as before, no
    event is made up for what ended earlier, and a target added since hears of the next end."""
    migrate(engine, "0012_repositories")
    execute(
        engine,
        "INSERT INTO builds (id, name, status, pipeline_yaml, source_name, env_json,"
        " cancel_requested, created_at_ms, finished_at_ms, collected, event)"
        " VALUES (1001, 'b', 'queued', 'name: b', 'p.yml', '{}', false, 10, NULL, false,"
        " 'manual')",
    )
    execute(
        engine,
        "INSERT INTO jobs (id, build_id, position, name, status, needs_json, labels_json,"
        " spec_json, queued_seq, reason, message, exit_code, attempt_count, retry_base,"
        " unstarted_requeues, queued_at_ms) VALUES (1001, 1001, 0, 'old', 'queued', '[]',"
        " :labels, :spec, 1, '', '', NULL, 0, 0, 0, 5)",
        labels=json.dumps(QUEUE_LABELS),
        spec=SPEC,
    )
    store = Store(database_url, events=event_body)
    try:
        assert revision_of(engine) == [head_revision()]
        assert schema_diff(engine) == []
        assert store.notifications.targets() == []
        target = NewTarget(TargetKind.WEBHOOK, "http://hook.example/", "", (NotifyEvent.BUILD,),
                           None, "")  # fmt: skip
        store.notifications.add(target, by="admin")
        agent = store.agents.register(name="a", labels=QUEUE_LABELS, capacity=1, session_hash="")
        old = claim_one(store, agent.id, QUEUE_LABELS)
        store.attempts.finish(
            old.attempt_id, outcome=Outcome.SUCCEEDED, reason="", message="", exit_code=0
        )
        (event,) = store.notifications.claim(2**62, 10, until=2**62)
        built = json.loads(event.body)["build"]
        assert (event.event, built["id"], built["status"]) == ("build", 1001, "succeeded")
    finally:
        store.close()
