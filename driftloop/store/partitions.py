"""Day partitions of the tables that grow with traffic, on PostgreSQL.

Migration 0011 turns ``records`` (by ``ts``), ``drift_profiles`` (by ``start``) and
``drift_ood_records`` (by ``ts``) into tables partitioned by ``RANGE`` of that time, one partition
per UTC day named ``<table>_pYYYYMMDD``, plus a ``DEFAULT`` partition (``<table>_default``) that
takes any row no day partition covers (a far-future clock, a very old replay), so no insert ever
fails. ``labels`` stays one table: its upsert key ``(model_id, request_id)`` must stay unique
across all time (a correction overwrites the label), and a partitioned table's unique keys must
contain the partition key.

The leader creates partitions ahead (:func:`ensure_partitions`); retention drops whole days
(:func:`drop_partitions_before`). Every function takes a :class:`~sqlalchemy.Connection` in a
transaction the caller commits, and does nothing on SQLite (one table, batched deletes) or on a
table that is not partitioned (a database migrated only to 0010).

Creating a partition is ``CREATE TABLE … (LIKE parent)`` then ``ATTACH PARTITION``: attaching
takes only a ``SHARE UPDATE EXCLUSIVE`` lock on the parent, so ingest keeps writing, where
``CREATE TABLE … PARTITION OF`` would take an ``ACCESS EXCLUSIVE`` one. Rows of that day already
sitting in the default partition are moved into the new partition first (attaching would fail
otherwise). Dropping detaches (plain ``DETACH``, in the caller's transaction) and drops in one
short transaction: ``DETACH … CONCURRENTLY`` cannot run inside a transaction block and is refused
while the table has a default partition; the plain form holds the parent's ``ACCESS EXCLUSIVE``
lock only for the catalogue change (milliseconds), under a ``lock_timeout`` so that ingest never
queues behind a drop that waits for a long transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

__all__ = [
    "DEFAULT_DAYS_AHEAD",
    "PARTITIONED",
    "BeforeDrop",
    "DroppedPartition",
    "Partition",
    "default_partition_rows",
    "drop_partitions_before",
    "ensure_all",
    "ensure_partitions",
    "include_object",
    "is_partitioned",
    "list_partitions",
    "old_partitions",
    "partition_name",
]

PARTITIONED = {"records": "ts", "drift_profiles": "start", "drift_ood_records": "ts"}
"""The tables migration 0011 partitions on PostgreSQL, and each one's partition key."""

DEFAULT_DAYS_AHEAD = 7
"""Days past today that have a partition ready (``retention.partitions_ahead_days``)."""

LOCK_KEY = 0x44524C50  # "DRLP": serialises partition DDL between replicas and the migration
LOCK_TIMEOUT = "5s"
"""How long a drop waits for the parent's lock before giving up until the next run."""

BeforeDrop = Callable[[Connection, str, str, datetime, datetime], None]
"""Called as ``before_drop(connection, table, partition, lower, upper)`` before a partition is
detached and dropped (the rows are still attached and readable): the hook of an archive. An
exception keeps the partition and stops the prune."""

_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition: its name and ``[lower, upper)``; both ``None`` for the default one."""

    name: str
    lower: datetime | None
    upper: datetime | None

    @property
    def is_default(self) -> bool:
        """True for the default partition."""
        return self.lower is None


@dataclass
class DroppedPartition:
    """A partition a prune dropped (or, in a dry run, would drop)."""

    table: str
    name: str
    lower: datetime
    upper: datetime
    rows: int
    """Rows it held: ``pg_class.reltuples`` where analysed (exact after ``ANALYZE``), else a
    count."""
    bytes: int
    """``pg_total_relation_size``: table, indexes and TOAST, all returned to the file system."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "table": self.table,
            "name": self.name,
            "lower": self.lower.isoformat(),
            "upper": self.upper.isoformat(),
            "rows": self.rows,
            "bytes": self.bytes,
        }


def partition_name(table: str, day: date) -> str:
    """The name of ``table``'s partition of ``day``."""
    return f"{table}_p{day:%Y%m%d}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _check(table: str) -> str:
    if table not in PARTITIONED:
        raise ValueError(f"{table!r} is not a table Driftloop partitions ({sorted(PARTITIONED)})")
    return PARTITIONED[table]


def is_partitioned(connection: Connection, table: str) -> bool:
    """True when ``table`` is a partitioned table (PostgreSQL, migrated to 0011 or later)."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.scalar(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    )
    return kind == "p"


def list_partitions(connection: Connection, table: str) -> list[Partition]:
    """``table``'s partitions, day partitions oldest first, then the default one; empty when
    the table is not partitioned."""
    if not is_partitioned(connection, table):
        return []
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    ).all()
    out = []
    for name, bound in rows:
        found = _BOUND.search(bound or "")
        if found is None:  # DEFAULT (or a bound Driftloop does not write: treated alike)
            out.append(Partition(name, None, None))
            continue
        lower, upper = (datetime.fromisoformat(v).astimezone(UTC) for v in found.groups())
        out.append(Partition(name, lower, upper))
    return sorted(out, key=lambda p: (p.lower is None, p.lower or datetime.min.replace(tzinfo=UTC)))


def ensure_partitions(
    connection: Connection, table: str, start: date, days_ahead: int = DEFAULT_DAYS_AHEAD
) -> list[str]:
    """Create ``table``'s day partitions of ``start`` .. ``start + days_ahead`` (and the default
    partition) where missing; return the names created. Idempotent; a no-op on a table that is
    not partitioned. Rows of a new day already in the default partition move into it."""
    key = _check(table)
    if not is_partitioned(connection, table):
        return []
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    existing = list_partitions(connection, table)
    created = []
    if not any(p.is_default for p in existing):
        connection.execute(text(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT"))
        created.append(f"{table}_default")
    default = next((p.name for p in existing if p.is_default), f"{table}_default")
    for offset in range(days_ahead + 1):
        day = start + timedelta(days=offset)
        lower, upper = _day_start(day), _day_start(day + timedelta(days=1))
        if any(
            p.lower is not None and p.upper is not None and p.lower < upper and lower < p.upper
            for p in existing
        ):
            continue
        name = partition_name(table, day)
        bounds = {"lower": lower, "upper": upper}
        connection.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
        # Attaching locks the default partition anyway (to check that none of its rows belong
        # to the new day); taking the lock first keeps a row of that day from arriving in it
        # between the move and the attach.
        connection.execute(text(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE"))
        connection.execute(
            text(
                f"WITH moved AS (DELETE FROM {default} WHERE {key} >= :lower AND {key} < :upper "
                f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
            ),
            bounds,
        )
        connection.execute(
            text(
                f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM "
                f"('{lower.isoformat()}') TO ('{upper.isoformat()}')"
            )
        )
        created.append(name)
    return created


def _rows(connection: Connection, name: str) -> int:
    estimate = connection.scalar(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": name}
    )
    if estimate is not None and estimate >= 0:
        return int(estimate)
    return int(connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)


def _bytes(connection: Connection, name: str) -> int:
    return int(
        connection.scalar(text("SELECT pg_total_relation_size(to_regclass(:t))"), {"t": name}) or 0
    )


def old_partitions(connection: Connection, table: str, cutoff: datetime) -> list[Partition]:
    """``table``'s day partitions whose every row is older than ``cutoff``, oldest first."""
    return [
        p for p in list_partitions(connection, table) if p.upper is not None and p.upper <= cutoff
    ]


def drop_partitions_before(
    connection: Connection,
    table: str,
    cutoff: datetime,
    dry_run: bool = False,
    before_drop: BeforeDrop | None = None,
) -> list[DroppedPartition]:
    """Detach and drop ``table``'s day partitions entirely older than ``cutoff`` (or with
    ``dry_run`` only list them); return what went, oldest first. Rows of the day the cutoff
    falls in are left to a ``DELETE``. All in the caller's transaction: commit it promptly (the
    parent's ``ACCESS EXCLUSIVE`` lock is held until then). A partition whose lock is not
    granted within :data:`LOCK_TIMEOUT` stops the drop there; the next run retries. Drops and
    creations take one advisory lock, so that two prunes (the leader's, a manual one) never
    detach the same partition and a drop never interleaves with a creation's locks on the
    parent and the default partition."""
    _check(table)
    old = old_partitions(connection, table, cutoff)
    if old and not dry_run:  # one drop (or creation) at a time: the leader's and a manual prune
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        old = old_partitions(connection, table, cutoff)  # what another one left
    dropped = []
    for part in old:
        lower, upper = part.lower, part.upper
        if lower is None or upper is None:  # never: old_partitions lists day partitions
            continue
        gone = DroppedPartition(
            table,
            part.name,
            lower,
            upper,
            _rows(connection, part.name),
            _bytes(connection, part.name),
        )
        if not dry_run:
            if before_drop is not None:
                before_drop(connection, table, part.name, lower, upper)
            if not _detach_and_drop(connection, table, part.name):
                break
        dropped.append(gone)
    return dropped


def _detach_and_drop(connection: Connection, table: str, name: str) -> bool:
    savepoint = connection.begin_nested()
    try:
        connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        connection.execute(text(f"ALTER TABLE {table} DETACH PARTITION {name}"))
        connection.execute(text(f"DROP TABLE {name}"))
        connection.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            return False
        raise
    savepoint.commit()
    return True


def default_partition_rows(connection: Connection) -> dict[str, int]:
    """Rows in each partitioned table's default partition (none belong there in normal
    operation: they mean a clock far off, or partitions not created ahead); empty on SQLite or
    an unpartitioned database."""
    out = {}
    for table in PARTITIONED:
        default = next((p.name for p in list_partitions(connection, table) if p.is_default), None)
        if default is not None:
            out[table] = int(connection.scalar(text(f"SELECT count(*) FROM {default}")) or 0)
    return out


def ensure_all(
    connection: Connection, start: date, days_ahead: int = DEFAULT_DAYS_AHEAD
) -> dict[str, list[str]]:
    """:func:`ensure_partitions` on every partitioned table; the names created per table."""
    return {table: ensure_partitions(connection, table, start, days_ahead) for table in PARTITIONED}


_PARTITION_NAME = re.compile(rf"^({'|'.join(PARTITIONED)})_(p\d{{8}}|default)$")
_LAYOUT_KEYS = {
    "uq_records_request_id_model_id_variant",  # declared (SQLite, unpartitioned PostgreSQL)
    "uq_records_request_id_model_id_variant_ts",  # partitioned: the key must contain ts
}


def include_object(connection: Connection) -> Callable[..., bool]:
    """An Alembic ``include_object`` for comparing ``connection``'s schema with the models:
    leaves out the day partitions (and their indexes) and, where ``records`` is partitioned,
    its unique key (it must contain ``ts`` there; the models declare the one without)."""
    partitioned = is_partitioned(connection, "records")

    def include(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
        table = getattr(obj, "table", obj if kind == "table" else None)
        if _PARTITION_NAME.match(str(getattr(table, "name", name) or "")):
            return False
        return not (partitioned and kind == "unique_constraint" and name in _LAYOUT_KEYS)

    return include
