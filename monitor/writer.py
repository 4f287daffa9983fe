"""The bulk write path of ingest: stage a batch, then insert what is new in one statement.

Rows go into a per-connection temporary table (PostgreSQL ``COPY``; SQLite ``executemany``) and
from there into ``records`` with ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``, which
both deduplicates against rows already stored (concurrency-safe: the unique constraint decides)
and tells exactly which rows are new. This is several times faster than an ORM or
``insertmanyvalues`` insert, whose per-batch SQL rendering dominated ingest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

COLUMNS = (
    "model_id",
    "version",
    "variant",
    "request_id",
    "ts",
    "inputs",
    "outputs",
    "latency_ms",
    "status",
    "received_at",
)
_COLS = ", ".join(COLUMNS)

_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage (model_id integer, version text, "
    "variant text, request_id text, ts timestamptz, inputs json, outputs json, "
    "latency_ms double precision, status integer, received_at timestamptz) ON COMMIT DELETE ROWS"
)
_SQLITE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage (model_id INTEGER, version TEXT, "
    "variant TEXT, request_id TEXT, ts DATETIME, inputs JSON, outputs JSON, latency_ms REAL, "
    "status INTEGER, received_at DATETIME)"
)
_MOVE = (
    f"INSERT INTO records ({_COLS}) SELECT {_COLS} FROM records_stage WHERE true "
    "ON CONFLICT (model_id, request_id, variant) DO NOTHING RETURNING id, request_id, variant"
)


@dataclass(slots=True)
class StoredRecord:
    """A record as stored: the columns of ``records``, without an ORM object's overhead."""

    id: int
    model_id: int
    version: str
    variant: str
    request_id: str
    ts: datetime
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    status: int
    received_at: datetime


def insert_new(session: Session, rows: list[dict[str, Any]]) -> list[StoredRecord]:
    """Insert ``rows`` (dicts keyed by :data:`COLUMNS`, unique on request id and variant);
    return the ones that were not stored before, with their ids."""
    if not rows:
        return []
    driver = session.connection().connection.driver_connection
    # The staging table is created "if not exists" on every call: DDL is transactional on both
    # databases, so a batch that rolls back also takes away a table it created.
    if session.get_bind().dialect.name == "postgresql":
        inserted = _insert_postgresql(driver, rows)
    else:
        inserted = _insert_sqlite(driver, rows)
    ids = {(request_id, variant): pk for pk, request_id, variant in inserted}
    out = []
    for row in rows:
        pk = ids.get((row["request_id"], row["variant"]))
        if pk is not None:
            out.append(StoredRecord(id=pk, **row))
    return out


def _insert_postgresql(connection: Any, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    dumps = json.dumps
    with connection.cursor() as cursor:
        cursor.execute(_PG_STAGE)
        with cursor.copy(f"COPY records_stage ({_COLS}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r["model_id"],
                        r["version"],
                        r["variant"],
                        r["request_id"],
                        r["ts"],
                        dumps(r["inputs"]),
                        dumps(r["outputs"]),
                        r["latency_ms"],
                        r["status"],
                        r["received_at"],
                    )
                )
        cursor.execute(_MOVE)
        result = cursor.fetchall()
        cursor.execute("DELETE FROM records_stage")  # the next model of the same batch
        return list(result)


def _sqlite_time(value: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type writes, in UTC, so both paths read alike.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sqlite(connection: Any, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    dumps = json.dumps
    cursor = connection.cursor()
    try:
        cursor.execute(_SQLITE_STAGE)
        cursor.executemany(
            f"INSERT INTO records_stage ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r["model_id"],
                    r["version"],
                    r["variant"],
                    r["request_id"],
                    _sqlite_time(r["ts"]),
                    dumps(r["inputs"]),
                    dumps(r["outputs"]),
                    r["latency_ms"],
                    r["status"],
                    _sqlite_time(r["received_at"]),
                )
                for r in rows
            ],
        )
        cursor.execute(_MOVE)
        result = cursor.fetchall()
        cursor.execute("DELETE FROM records_stage")
        return list(result)
    finally:
        cursor.close()
