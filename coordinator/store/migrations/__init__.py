"""Alembic migrations of the coordinator's schema; run by coordinator.store.schema, not by hand.

There is no alembic.ini: schema.alembic_config() builds the configuration and hands env.py the
connection to use. A new revision goes in versions/, named NNNN_what.py with revision "NNNN_what"
and down_revision the previous head; tests/unit/coordinator/test_migrations.py fails until the
models in tables.py and the migrations agree.
"""
