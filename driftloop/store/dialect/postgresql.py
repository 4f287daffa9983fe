"""PostgreSQL: many monitor replicas on one server, so locks, arrays, COPY and partitions.

Bulk writes go through ``COPY`` (records) or one ``unnest`` of whole columns (upserts); long
lists travel as one array parameter (an ``IN`` of thousands of placeholders costs more to parse
and plan than the statement's work); the leader holds a session-level advisory lock on a
connection of its own (released by the server if the process dies); large reads stream as Arrow
through ADBC's driver. ADBC and Arrow are imported on first use only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.contract import document_json
from driftloop.store import partitions
from driftloop.store.dialect.protocol import StagedRow
from driftloop.store.dialect.staging import COLUMN_LIST, MOVE
from driftloop.store.partitions import BeforeDrop, DroppedPartition, Partition

if TYPE_CHECKING:
    import pyarrow as pa

    from driftloop.contract import Record

__all__ = ["ANALYTIC_SETTINGS", "AdvisoryLock", "PostgresDialect", "copy_payload"]

log = logging.getLogger(__name__)

ANALYTIC_SETTINGS = (
    # One hash of a million labels fits in memory: no spilling the join to temporary files.
    "SET work_mem = '256MB'",
    # Parallel workers would take the core that parses the rows as they arrive (measured: the
    # serial plan is faster on two cores; docs/benchmarks.md).
    "SET max_parallel_workers_per_gather = 0",
)
"""Session settings of the connection :meth:`PostgresDialect.arrow_batches` reads on."""

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS records_stage (model_id integer, version text, "
    "variant text, request_id text, ts timestamptz, inputs json, outputs json, "
    "latency_ms double precision, status integer, received_at timestamptz) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY records_stage ({COLUMN_LIST}) FROM STDIN"
_encode = msgspec.json.Encoder().encode
_LEAVES = text(
    "SELECT c.oid::regclass::text, c.reltuples FROM pg_class c "
    "WHERE c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(:t)) WHERE isleaf) "
    "OR (c.oid = to_regclass(:t) AND c.relkind <> 'p')"
)
"""The table itself, or a partitioned table's partitions, with their row estimates
(``pg_partition_tree`` lists nothing for a table that is not partitioned: the second arm)."""


def _copy_text(value: str) -> str:
    """``value`` as a field of COPY's text format (identifiers are printable ASCII: only the
    backslash needs escaping)."""
    return value.replace("\\", "\\\\") if "\\" in value else value


def copy_payload(model_id: int, records: Sequence[Record], received_at: datetime) -> bytes:
    """The rows of ``records`` in COPY's text format, columns as
    ``driftloop.store.dialect.staging.COLUMNS``.

    Written by hand rather than row by row through the driver: a row is a join of strings.
    JSON escapes control characters, so a backslash is all there is to escape in a document.
    """
    head = b"%d\t" % model_id
    tail = f"\t{received_at.isoformat()}\n".encode()
    # Timestamps (UTC) as msgspec writes them, RFC 3339, in one call for the batch: a JSON list
    # of strings without quotes or commas inside them. A third of the cost of isoformat().
    stamps = _encode([r.timestamp for r in records])[2:-2].split(b'","')
    lines = []
    for r, stamp in zip(records, stamps, strict=True):
        inputs, outputs = document_json(r.inputs), document_json(r.outputs)
        if b"\\" in inputs:
            inputs = inputs.replace(b"\\", b"\\\\")
        if b"\\" in outputs:
            outputs = outputs.replace(b"\\", b"\\\\")
        names = f"{_copy_text(r.version)}\t{r.variant}\t{_copy_text(r.request_id)}\t".encode()
        numbers = f"\t{r.latency_ms!r}\t{r.status}".encode()
        lines.append(b"".join((head, names, stamp, b"\t", inputs, b"\t", outputs, numbers, tail)))
    return b"".join(lines)


LEADER_KEEPALIVES = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
"""Server-side TCP keepalives of the leader's session (seconds; settable per session). A leader
that vanishes without closing its connection (power lost, a network partition) then loses its
session, and the lock, about 25 s after it last spoke, instead of after the operating system's
default of two hours. Ignored on a Unix socket, where no peer can vanish that way."""


class AdvisoryLock:
    """A session-level advisory lock held on a dedicated connection.

    The server releases it when that connection ends, so a leader killed outright hands over
    as soon as its connection is gone; one that vanishes silently, once the session's
    keepalives (:data:`LEADER_KEEPALIVES`) give up. Each :meth:`acquire` while held checks the
    connection still answers; a lost connection means a lost lock.
    """

    def __init__(self, engine: Engine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        """Take the lock (``pg_try_advisory_lock``, never waits) or check it is still held."""
        held = self._connection is not None
        try:
            if self._connection is None or self._connection.closed:
                self._connection = self.engine.connect()
                for name, value in LEADER_KEEPALIVES.items():
                    self._connection.execute(
                        text("SELECT set_config(:name, :value, false)"),
                        {"name": name, "value": value},
                    )
                got = self._connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                ).scalar()
                self._connection.commit()
                if not got:
                    self._connection.close()
                    self._connection = None
                    return False
                log.info("this monitor is now the leader")
            else:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
            return True
        except SQLAlchemyError:
            if held:
                log.warning("lost the database connection holding the leader lock", exc_info=True)
            connection, self._connection = self._connection, None
            _discard(connection)
            return False

    def release(self) -> None:
        """Unlock and give the connection back. Closing alone is not enough: the pool keeps
        the server session, and the lock with it; a connection that cannot unlock is discarded
        (the server then releases the lock with the session)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            connection.commit()
            connection.close()
        except SQLAlchemyError:
            _discard(connection)


def _discard(connection: Connection | None) -> None:
    """Close ``connection`` for good, never back into the pool (where its server session, and
    a lock with it, would live on)."""
    if connection is None:
        return
    try:
        connection.invalidate()
        connection.close()
    except SQLAlchemyError:
        log.debug("leader connection already gone", exc_info=True)


def _array_type(table: Table, name: str, dialect: Any) -> str:
    """The SQL array type of column ``name`` (strings unbounded, as the column checks them)."""
    kind = table.c[name].type
    if isinstance(kind, String) and not isinstance(kind, JSON):
        return "varchar[]"
    return f"{kind.compile(dialect=dialect)}[]"


def _column_text(table: Table, name: str, values: list[Any]) -> str | None:
    """``values`` as one newline-separated string, or None when that cannot be lossless (a
    NULL outside JSON, or a newline inside a value)."""
    kind = table.c[name].type
    if isinstance(kind, JSON):
        joined = "\n".join(map(json.dumps, values))  # escapes newlines; None is 'null'
    elif None in values:
        return None
    elif isinstance(kind, DateTime):
        joined = "\n".join(v.isoformat() for v in values)
    else:
        joined = "\n".join(map(str, values))
    if joined == "" or joined.count("\n") != len(values) - 1:
        return None  # string_to_array('') is empty, not one empty string
    return joined


class PostgresDialect:
    """The :class:`~driftloop.store.dialect.Dialect` of PostgreSQL (many replicas)."""

    name = "postgresql"
    locks_rows = True
    reads_arrow = True
    migrates_on_start = False
    prune_pause_seconds = 0.0
    """A ``DELETE`` does not block inserts: no pause needed."""
    supports_partitions = True
    modifying_ctes = True

    def insert(self, table: Any) -> Any:
        """PostgreSQL's ``INSERT`` (with ``ON CONFLICT`` clauses)."""
        return postgresql.insert(table)

    def upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        key: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """One statement for the whole batch: each column travels as one newline-separated
        string, split and typed by the server (``unnest``). This avoids both a statement per
        row and per-element array escaping in Python. A column that cannot travel so (a NULL
        outside JSON, a newline in a value) sends the batch through ``executemany`` instead."""
        if not rows:
            return
        names = list(rows[0])
        params: dict[str, str] = {}
        for name in names:
            joined = _column_text(table, name, [row[name] for row in rows])
            if joined is None:
                self._upsert_rows(connection, table, rows, key=key, update=update)
                return
            params[name] = joined
        preparer = connection.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in names)
        types = [_array_type(table, name, connection.dialect) for name in names]
        arrays = ",\n    ".join(
            f"CAST(string_to_array(:{name}, E'\\n') AS {kind})"
            for name, kind in zip(names, types, strict=True)
        )
        conflict = ", ".join(preparer.quote(name) for name in key)
        sets = ", ".join(f"{preparer.quote(n)} = excluded.{preparer.quote(n)}" for n in update)
        statement = text(
            f"INSERT INTO {preparer.format_table(table)} ({columns})\n"
            f"SELECT * FROM unnest(\n    {arrays}\n)\n"
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}"
        )
        connection.execute(statement, params)

    @staticmethod
    def _upsert_rows(
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        key: Sequence[str],
        update: Sequence[str],
    ) -> None:
        insert = postgresql.insert(table)
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
        """Stage with ``COPY``, then move (see ``driftloop.store.dialect.staging``)."""
        if not records:
            return []
        driver: Any = connection.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(_STAGE)
            with cursor.copy(_COPY) as copy:
                copy.write(copy_payload(model_id, records, received_at))
            cursor.execute(MOVE)
            result = cursor.fetchall()
            if not last:
                cursor.execute("DELETE FROM records_stage")  # the commit empties it otherwise
            return list(result)

    def among(self, column: Any, values: Sequence[Any]) -> Iterator[ColumnElement[bool]]:
        """One array parameter (no parsing of thousands of placeholders)."""
        yield column == any_(literal(list(values), ARRAY(column.type)))

    def listed(self, column: Any, name: str, kind: Any) -> ColumnElement[bool]:
        """``= ANY(:name)``, one array parameter."""
        result: ColumnElement[bool] = column == any_(bindparam(name, type_=ARRAY(kind)))
        return result

    @contextmanager
    def isolated(self, session: Session) -> Iterator[None]:
        """In a savepoint: a failed statement aborts PostgreSQL's whole transaction."""
        with session.begin_nested():
            yield

    def json_scalar(self, column: Any, *keys: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """``jsonb_extract_path_text`` typed by ``jsonb_typeof`` (NULL for strings)."""
        parts = [literal(k) for k in keys]
        node = func.jsonb_extract_path(column, *parts) if keys else column
        value = (
            func.jsonb_extract_path_text(column, *parts)
            if keys
            else column.op("#>>")(literal_column("'{}'::text[]"))
        )
        kind = func.jsonb_typeof(node)
        return type_coerce(value, String), case((kind != "string", kind), else_=null())

    def json_text(self, column: Any) -> ColumnElement[Any]:
        """``CAST(column AS text)`` (``json`` gives its text back as written)."""
        return cast(column, Text)

    def raw_timestamp(self, column: Any) -> ColumnElement[Any]:
        """The column, typed (Arrow reads ``timestamptz`` as UTC timestamps)."""
        result: ColumnElement[Any] = column
        return result

    @contextmanager
    def arrow_batches(
        self, bind: Engine | Connection, statement: Select[Any], *, batch_bytes: int
    ) -> Iterator[pa.RecordBatchReader]:
        """Read with ADBC's PostgreSQL driver, which runs the query as a binary ``COPY`` and
        decodes it into Arrow in C, on a connection of its own opened from ``bind``'s URL,
        with :data:`ANALYTIC_SETTINGS`. Driver errors are raised as SQLAlchemy's
        :class:`~sqlalchemy.exc.DBAPIError` (so callers handle one kind)."""
        import adbc_driver_postgresql as adbc_postgresql
        from adbc_driver_postgresql import dbapi as adbc

        # Values inline: with bound parameters the driver runs a prepared statement and collects
        # the whole result in libpq first; without, it streams a binary COPY. The values are
        # rendered by the connected dialect (it knows the server's string escaping).
        sql = str(statement.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True}))
        url = bind.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        hint = adbc_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value
        try:
            with adbc.connect(url) as connection, connection.cursor() as cursor:
                for setting in ANALYTIC_SETTINGS:
                    cursor.execute(setting)
                cursor.adbc_statement.set_options(**{hint: batch_bytes})
                cursor.execute(sql)
                yield cursor.fetch_record_batch()
        except adbc.Error as exc:
            raise DBAPIError.instance(sql, None, exc, adbc.Error) from exc

    def leader_lock(self, engine: Engine, key: int) -> AdvisoryLock:
        """An advisory lock on a connection of its own."""
        return AdvisoryLock(engine, key)

    def table_rows(self, connection: Connection, table: str, *, estimate: bool = True) -> int:
        """The planner's estimate (``pg_class.reltuples``, exact after ``ANALYZE``), summed over
        a partitioned table's partitions (autovacuum analyses partitions, never their parent);
        a count for a table never analysed (so small, or just created), or with
        ``estimate=False``."""
        leaves = connection.execute(_LEAVES, {"t": table}).all() if estimate else []
        if not leaves:
            name = connection.dialect.identifier_preparer.quote(table)
            return int(connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)
        # Leaf names come from the catalogue (regclass text: quoted where needed).
        return sum(
            int(tuples)
            if tuples >= 0
            else int(connection.scalar(text(f"SELECT count(*) FROM {leaf}")) or 0)
            for leaf, tuples in leaves
        )

    def table_bytes(self, connection: Connection, table: str) -> int:
        """``pg_total_relation_size``: table, indexes and TOAST (of every partition)."""
        total = connection.scalar(
            text(
                # The tree lists nothing for a table that is not partitioned: add the table.
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM ("
                "SELECT relid FROM pg_partition_tree(to_regclass(:t)) "
                "UNION SELECT to_regclass(:t)) tree"
            ),
            {"t": table},
        )
        return int(total or 0)

    def database_bytes(self, connection: Connection) -> int:
        """``pg_database_size`` of the current database."""
        return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)

    def partitions(self, connection: Connection, table: str) -> list[Partition]:
        """From the catalogue (``driftloop.store.partitions.list_partitions``)."""
        return partitions.list_partitions(connection, table)

    def ensure_partitions(
        self, connection: Connection, start: date, days_ahead: int
    ) -> dict[str, list[str]]:
        """``driftloop.store.partitions.ensure_all`` (attach, never ``PARTITION OF``: ingest
        keeps writing)."""
        return partitions.ensure_all(connection, start, days_ahead)

    def drop_partitions_before(
        self,
        connection: Connection,
        table: str,
        cutoff: datetime,
        *,
        dry_run: bool = False,
        before_drop: BeforeDrop | None = None,
    ) -> list[DroppedPartition]:
        """``driftloop.store.partitions.drop_partitions_before`` (a no-op on a table that is not
        partitioned, such as a database migrated only to 0010)."""
        if table not in partitions.PARTITIONED:
            return []
        return partitions.drop_partitions_before(
            connection, table, cutoff, dry_run=dry_run, before_drop=before_drop
        )
