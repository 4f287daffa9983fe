"""Migration 0002 creates exactly the drift tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from driftloop.store import Base, make_engine
from driftloop.store.partitions import include_object

DRIFT_TABLES = {"drift_profiles", "drift_results", "drift_ood_records"}


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= DRIFT_TABLES
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object(connection)}
            )
            diff = compare_metadata(context, Base.metadata)
        assert [d for d in diff if any(t in str(d) for t in DRIFT_TABLES)] == []
        with engine.connect() as connection:
            unique = inspect(connection).get_unique_constraints("drift_profiles")
        assert [u["column_names"] for u in unique] == [
            ["model_id", "layout", "version", "variant", "grain", "start"]
        ]
    finally:
        engine.dispose()
