"""The public surface and the 0005 migration of the retraining component."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from driftloop.store import Base, make_engine
from driftloop.store.migrate import alembic_config
from tests.feedback.webhooks.conftest import BOTH_DATABASES

TABLES = {
    "retrain_policies",
    "retrain_condition_state",
    "retrain_triggers",
    "webhook_endpoints",
    "webhook_outbox",
    "webhook_attempts",
}


@BOTH_DATABASES
def test_migration_0005_matches_the_tables_and_downgrades(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = [
                d
                for d in compare_metadata(context, Base.metadata)
                if any(t in repr(d) for t in TABLES)
            ]
            assert diffs == []
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
            assert "models" in inspect(connection).get_table_names()
    finally:
        engine.dispose()
