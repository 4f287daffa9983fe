"""The feedback tables as migrated equal the tables as declared; the public surface is pinned."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from driftloop.store import Base, make_engine

TABLES = {"labels", "snapshots", "performance_results"}


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):  # column modifications come as lists of tuples
        return _table_of(diff[0])
    for item in diff[1:]:
        name = getattr(item, "name", None)
        table = getattr(item, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(item, str) and item in TABLES:
            return item
        if name in TABLES:
            return str(name)
    return None


def test_migration_0003_creates_the_tables_as_declared(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in diffs if _table_of(d) in TABLES]
    assert mine == []
