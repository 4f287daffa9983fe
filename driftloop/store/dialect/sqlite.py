"""SQLite: one process, one writer at a time, one table per kind of row.

The monitor is the only process on its database file, so it is always the leader, and a write
transaction (``BEGIN IMMEDIATE``, see ``driftloop.store.engine``) already excludes every other
writer: no row locks are needed. SQLite has no arrays and a limit on bound parameters, so long
lists are split into chunks; no partitions, so retention deletes in bounded batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    Table,
    bindparam,
    case,
    func,
    literal,
    null,
    text,
    type_coerce,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.contract import document_json
from driftloop.store.dialect.errors import UnsupportedOperationError
from driftloop.store.dialect.protocol import StagedRow
from driftloop.store.dialect.staging import COLUMN_LIST, MOVE
from driftloop.store.partitions import BeforeDrop, DroppedPartition, Partition

if TYPE_CHECKING:
    from driftloop.contract import Record

__all__ = ["AlwaysLeader", "SqliteDialect"]

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage (model_id INTEGER, version TEXT, "
    "variant TEXT, request_id TEXT, ts DATETIME, inputs JSON, outputs JSON, latency_ms REAL, "
    "status INTEGER, received_at DATETIME)"
)
_STAGE_ROW = f"INSERT INTO records_stage ({COLUMN_LIST}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _time(value: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime type writes, in UTC, so both paths read alike.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json_path(keys: tuple[str | int, ...]) -> str:
    path = "$"
    for key in keys:
        path += f"[{key}]" if isinstance(key, int) else f'."{key}"'
    return path


class AlwaysLeader:
    """The leader lock of a single-process database: held by the one monitor, always."""

    def acquire(self) -> bool:
        """True: there is no other replica."""
        return True

    def release(self) -> None:
        """Nothing to give up."""


class SqliteDialect:
    """The :class:`~driftloop.store.dialect.Dialect` of SQLite (one machine)."""

    name = "sqlite"
    locks_rows = False
    reads_arrow = False
    migrates_on_start = True
    prune_pause_seconds = 0.2
    """SQLite's lock is not fair: a writer that commits and begins again at once keeps it,
    while a waiting writer sleeps in its busy handler (up to 100 ms a try)."""
    supports_partitions = False
    modifying_ctes = False
    """A common table expression is a ``SELECT`` only."""
    chunk = 5_000
    """Values per ``IN`` list (below SQLite's bound-parameter limit)."""

    def insert(self, table: Any) -> Any:
        """SQLite's ``INSERT`` (with ``ON CONFLICT`` clauses)."""
        return sqlite.insert(table)

    def upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        key: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """``INSERT ... ON CONFLICT DO UPDATE``, executed for many rows."""
        if not rows:
            return
        insert = sqlite.insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=list(key), set_={name: insert.excluded[name] for name in update}
        )
        connection.execute(statement, list(rows))

    def insert_records(
        self,
        connection: Connection,
        model_id: int,
        records: Sequence[Record],
        received_at: datetime,
        *,
        last: bool = False,
    ) -> list[StagedRow]:
        """Stage with ``executemany``, then move (see ``driftloop.store.dialect.staging``)."""
        if not records:
            return []
        driver: Any = connection.connection.driver_connection
        cursor = driver.cursor()
        received = _time(received_at)
        try:
            cursor.execute(_STAGE)
            cursor.executemany(
                _STAGE_ROW,
                [
                    (
                        model_id,
                        r.version,
                        r.variant.value,
                        r.request_id,
                        _time(r.timestamp),
                        document_json(r.inputs).decode(),
                        document_json(r.outputs).decode(),
                        r.latency_ms,
                        r.status,
                        received,
                    )
                    for r in records
                ],
            )
            cursor.execute(MOVE)
            result = cursor.fetchall()
            cursor.execute("DELETE FROM records_stage")
            return list(result)
        finally:
            cursor.close()

    def among(self, column: Any, values: Sequence[Any]) -> Iterator[ColumnElement[bool]]:
        """Chunks of :attr:`chunk` values (SQLite's parameter limit)."""
        for start in range(0, len(values), self.chunk):
            yield column.in_(values[start : start + self.chunk])

    def listed(self, column: Any, name: str, kind: Any) -> ColumnElement[bool]:
        """An expanding ``IN`` (one placeholder per value, rendered at execution)."""
        result: ColumnElement[bool] = column.in_(bindparam(name, expanding=True))
        return result

    @contextmanager
    def isolated(self, session: Session) -> Iterator[None]:
        """As is: a failed statement leaves SQLite's transaction usable by itself (and
        pysqlite's savepoints are unreliable)."""
        yield

    def json_scalar(self, column: Any, *keys: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """``json_extract`` (numbers arrive typed), flagged by ``json_type`` for booleans and
        containers."""
        path = literal(_json_path(keys))
        kind = func.json_type(column, path)
        flagged = case((kind.in_(["true", "false", "object", "array"]), kind), else_=null())
        return func.json_extract(column, path), flagged

    def json_text(self, column: Any) -> ColumnElement[Any]:
        """The stored text as it is."""
        return type_coerce(column, String)

    def raw_timestamp(self, column: Any) -> ColumnElement[Any]:
        """The stored ISO text."""
        return type_coerce(column, String)

    def arrow_batches(
        self, bind: Engine | Connection, statement: Select[Any], *, batch_bytes: int
    ) -> NoReturn:
        """Not available: read rows (``reads_arrow`` is False)."""
        raise UnsupportedOperationError(self.name, "arrow_batches")

    def leader_lock(self, engine: Engine, key: int) -> AlwaysLeader:
        """Always held: the monitor is the only process on its database."""
        return AlwaysLeader()

    def table_rows(self, connection: Connection, table: str, *, estimate: bool = True) -> int:
        """A count (SQLite keeps no estimate)."""
        name = connection.dialect.identifier_preparer.quote(table)
        return int(connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """None: per-table sizes need a walk of every page (see :meth:`database_bytes`)."""
        return None

    def database_bytes(self, connection: Connection) -> int:
        """The pages in use, ``(page_count - freelist_count) * page_size`` (deleted rows'
        pages are free, reused by later inserts)."""
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar() or 0)
        free = int(connection.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
        size = int(connection.exec_driver_sql("PRAGMA page_size").scalar() or 0)
        return (pages - free) * size

    def partitions(self, connection: Connection, table: str) -> list[Partition]:
        """None: SQLite keeps one table (retention deletes in bounded batches)."""
        return []

    def ensure_partitions(
        self, connection: Connection, start: date, days_ahead: int
    ) -> dict[str, list[str]]:
        """Nothing to create."""
        return {}

    def drop_partitions_before(
        self,
        connection: Connection,
        table: str,
        cutoff: datetime,
        *,
        dry_run: bool = False,
        before_drop: BeforeDrop | None = None,
    ) -> list[DroppedPartition]:
        """Nothing to drop: every old row is left to retention's batched ``DELETE``."""
        return []
