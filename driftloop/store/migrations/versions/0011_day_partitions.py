"""day_partitions: records, drift profiles and flagged records partitioned by day on PostgreSQL

``records`` (by ``ts``), ``drift_profiles`` (by ``start``) and ``drift_ood_records`` (by ``ts``)
become ``PARTITION BY RANGE`` tables with one partition per UTC day (``<table>_pYYYYMMDD``) and a
``DEFAULT`` partition, so that retention drops a whole day instead of deleting its rows
(:mod:`driftloop.store.partitions`). A partitioned table's unique keys must contain the
partition key:

- ``records``: the primary key becomes ``(id, ts)`` and the unique key ``(request_id, model_id,
  variant, ts)``. Ingest still drops a re-sent record (a retry or spool replay carries the same
  timestamp); a second record with the same request id and variant but another timestamp is now
  stored instead of ignored. The downgrade keeps the first (lowest id) of such rows;
- ``drift_profiles``: the unique key already ends with ``start``; the primary key becomes
  ``(id, start)``;
- ``drift_ood_records``: the primary key becomes ``(id, ts)``.

``labels`` stays one table: its upsert key ``(model_id, request_id)`` must be unique over all
time (a correction replaces the label), which a key with a time in it cannot promise.

The upgrade renames each table, creates the partitioned one, a partition for every day that has
rows and for today and the next seven days, copies the rows, drops the old table and builds the
keys and indexes (with the old names, on every partition). It rewrites the three tables under an
``ACCESS EXCLUSIVE`` lock: plan the window on a large store. Nothing changes on SQLite.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from alembic import op
from sqlalchemy import Connection, text

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DAYS_AHEAD = 7


class _Layout(NamedTuple):
    # (A dataclass cannot be built here: Alembic loads this file outside sys.modules.)
    key: str
    unique: dict[str, tuple[str, ...]]
    indexes: dict[str, tuple[str, ...]]
    foreign_key: str | None = None
    old_unique: dict[str, tuple[str, ...]] = {}


TABLES = {
    "records": _Layout(
        key="ts",
        unique={
            "uq_records_request_id_model_id_variant_ts": ("request_id", "model_id", "variant", "ts")
        },
        old_unique={
            "uq_records_request_id_model_id_variant": ("request_id", "model_id", "variant")
        },
        indexes={"ix_records_model_ts": ("model_id", "ts")},
    ),
    "drift_profiles": _Layout(
        key="start",
        unique={
            "uq_drift_profiles_model_id_layout_version_variant_grain_start": (
                "model_id",
                "layout",
                "version",
                "variant",
                "grain",
                "start",
            )
        },
        indexes={"ix_drift_profiles_window": ("model_id", "layout", "grain", "start")},
        foreign_key="fk_drift_profiles_model_id_models",
    ),
    "drift_ood_records": _Layout(
        key="ts",
        unique={},
        indexes={"ix_drift_ood_records_model_ts": ("model_id", "ts")},
        foreign_key="fk_drift_ood_records_model_id_models",
    ),
}


def _cols(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)


def _sequence(connection: Connection, table: str) -> str:
    return str(connection.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}))


def _keys(
    table: str, layout: _Layout, primary: tuple[str, ...], unique: dict[str, tuple[str, ...]]
) -> None:
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({_cols(primary)})")
    for name, columns in unique.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({_cols(columns)})")
    for name, columns in layout.indexes.items():
        op.execute(f"CREATE INDEX {name} ON {table} ({_cols(columns)})")
    if layout.foreign_key:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {layout.foreign_key} FOREIGN KEY (model_id) "
            "REFERENCES models (id) ON DELETE CASCADE"
        )


def _partition(table: str, layout: _Layout) -> None:
    connection = op.get_bind()
    old = f"{table}_0010"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    sequence = _sequence(connection, old)
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE ({layout.key})"
    )
    op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    days = set(
        connection.scalars(
            text(f"SELECT DISTINCT ({layout.key} AT TIME ZONE 'UTC')::date FROM {old}")
        )
    )
    today = datetime.now(UTC).date()
    ahead = {today + timedelta(days=n) for n in range(DAYS_AHEAD + 1)}
    days |= ahead
    for day in sorted(days):
        lower = datetime(day.year, day.month, day.day, tzinfo=UTC)
        upper = lower + timedelta(days=1)
        op.execute(
            f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
            f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
        )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    _keys(table, layout, ("id", layout.key), layout.unique)
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")
    for day in sorted(days - ahead):  # the copied rows, for the planner and row estimates
        op.execute(f"ANALYZE {table}_p{day:%Y%m%d}")


def _unpartition(table: str, layout: _Layout) -> None:
    connection = op.get_bind()
    old = f"{table}_0011"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    sequence = _sequence(connection, old)
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS)")
    unique = layout.old_unique or layout.unique
    rows = f"SELECT * FROM {old}"
    for columns in layout.old_unique.values():  # the narrower key: keep the first of each
        rows = f"SELECT DISTINCT ON ({_cols(columns)}) * FROM {old} ORDER BY {_cols(columns)}, id"
    op.execute(f"INSERT INTO {table} {rows}")
    op.execute(f"DROP TABLE {old} CASCADE")
    _keys(table, layout, ("id",), unique)
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, layout in TABLES.items():
        _partition(table, layout)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, layout in TABLES.items():
        _unpartition(table, layout)
