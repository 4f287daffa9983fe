"""What a database must offer Driftloop beyond portable SQLAlchemy: the :class:`Dialect` seam.

Every operation whose SQL or mechanism differs between SQLite and PostgreSQL is a member here,
so that the code above the store asks the dialect instead of testing its name. Each member says
what it guarantees; ``tests/driftloop/store/test_dialect_contract.py`` checks the guarantee
against both implementations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, Select, Table
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.store.partitions import BeforeDrop, DroppedPartition, Partition

if TYPE_CHECKING:
    import pyarrow as pa

    from driftloop.contract import Record

__all__ = ["Dialect", "LeaderLock", "StagedRow"]

StagedRow = tuple[int, str, str]
"""A record :meth:`Dialect.insert_records` stored: ``(id, request_id, variant)``."""


class LeaderLock(Protocol):
    """The lock that makes one monitor replica the leader (it runs the periodic jobs)."""

    def acquire(self) -> bool:
        """Take the lock, or check it is still held; True while this process holds it. Never
        raises for a lost database: that is False (the lock went with the connection)."""
        ...

    def release(self) -> None:
        """Give the lock up (another replica may take it at once)."""
        ...


class Dialect(Protocol):
    """The operations whose SQL differs between the databases Driftloop supports."""

    name: str
    """SQLAlchemy's name of the dialect (``sqlite``, ``postgresql``): for reports and logs."""
    locks_rows: bool
    """``SELECT ... FOR UPDATE`` is what serialises claimers (PostgreSQL). When False, a write
    transaction already excludes every other writer (SQLite's ``BEGIN IMMEDIATE``)."""
    reads_arrow: bool
    """:meth:`arrow_batches` is available (a columnar reader in C); otherwise read rows."""
    migrates_on_start: bool
    """``driftloop monitor`` upgrades the schema itself by default (a single process owns the
    database); with replicas, ``driftloop db upgrade`` runs once instead."""
    prune_pause_seconds: float
    """The default wait between retention batches, so that waiting writers get the lock."""
    supports_partitions: bool
    """Tables can be partitioned by time (``driftloop.store.partitions``) and a day dropped
    whole; without, the partition members do nothing and retention deletes rows."""
    modifying_ctes: bool
    """A ``WITH`` may hold ``DELETE ... RETURNING`` (data-modifying CTEs), so a retention batch
    deletes records and the labels only they joined in one statement; without, one statement
    each, in one transaction."""

    # Writes -----------------------------------------------------------------------------------

    def insert(self, table: Any) -> Any:
        """An ``INSERT`` of ``table`` (a Table or mapped class) with ``on_conflict_do_nothing``
        and ``on_conflict_do_update``."""
        ...

    def upsert(
        self,
        connection: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        key: Sequence[str],
        update: Sequence[str],
    ) -> None:
        """Insert ``rows`` (all with the same keys); where one conflicts on the unique ``key``
        columns, overwrite its ``update`` columns instead."""
        ...

    def insert_records(
        self,
        connection: Connection,
        model_id: int,
        records: Sequence[Record],
        received_at: datetime,
        *,
        last: bool = False,
    ) -> list[StagedRow]:
        """Bulk-insert ``records`` of one model into ``records``; return the rows that were
        new (a record already stored under its ``(model_id, request_id, variant)`` is skipped,
        decided by the unique constraint, so concurrent writers are safe). ``last``: nothing
        else is staged in this transaction (PostgreSQL empties the stage at commit)."""
        ...

    # Reads ------------------------------------------------------------------------------------

    def among(self, column: Any, values: Sequence[Any]) -> Iterator[ColumnElement[bool]]:
        """``column IN values`` as few conditions as the database handles well; run one
        statement per condition."""
        ...

    def listed(self, column: Any, name: str, kind: Any) -> ColumnElement[bool]:
        """``column`` is one of the list bound later as parameter ``name`` (of SQL type
        ``kind``); the same statement serves lists of any length."""
        ...

    def isolated(self, session: Session) -> AbstractContextManager[None]:
        """Run statements so that one failing leaves the session's transaction usable (and what
        the transaction wrote before it in place)."""
        ...

    def json_scalar(self, column: Any, *keys: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """The JSON value at ``keys`` of ``column`` (the whole document when none) as text or a
        number, and its JSON type where decoding needs it (NULL for strings); see
        ``driftloop.feedback.sql.decode``."""
        ...

    def json_text(self, column: Any) -> ColumnElement[Any]:
        """A JSON document column as its text."""
        ...

    def raw_timestamp(self, column: Any) -> ColumnElement[Any]:
        """A timestamp column as the driver reads it fastest: typed (PostgreSQL) or the stored
        ISO text (SQLite); ``driftloop.feedback.sql.Extractor.timestamps`` decodes both."""
        ...

    def arrow_batches(
        self, bind: Engine | Connection, statement: Select[Any], *, batch_bytes: int
    ) -> AbstractContextManager[pa.RecordBatchReader]:
        """Stream ``statement``'s rows as Arrow batches of about ``batch_bytes``, on a
        connection of its own (it sees what is committed). Only when :attr:`reads_arrow`."""
        ...

    # Coordination -----------------------------------------------------------------------------

    def leader_lock(self, engine: Engine, key: int) -> LeaderLock:
        """The leader lock named ``key`` for this process."""
        ...

    # Sizes and partitions ---------------------------------------------------------------------

    def table_rows(self, connection: Connection, table: str, *, estimate: bool = True) -> int:
        """Rows of ``table``: a cheap estimate where the database keeps one (exact after an
        ``ANALYZE``), else (or with ``estimate=False``) a count."""
        ...

    def table_bytes(self, connection: Connection, table: str) -> int | None:
        """Bytes of ``table`` with its indexes, or None where the database cannot tell cheaply."""
        ...

    def database_bytes(self, connection: Connection) -> int:
        """Bytes the whole database holds in use."""
        ...

    def partitions(self, connection: Connection, table: str) -> list[Partition]:
        """The partitions of ``table``, day partitions oldest first, then the default one;
        empty when it is not partitioned."""
        ...

    def ensure_partitions(
        self, connection: Connection, start: date, days_ahead: int
    ) -> dict[str, list[str]]:
        """Create the day partitions of ``start .. start + days_ahead`` of every partitioned
        table where missing; the names created per table (idempotent)."""
        ...

    def drop_partitions_before(
        self,
        connection: Connection,
        table: str,
        cutoff: datetime,
        *,
        dry_run: bool = False,
        before_drop: BeforeDrop | None = None,
    ) -> list[DroppedPartition]:
        """Detach and drop ``table``'s day partitions entirely older than ``cutoff`` (with
        ``dry_run``, only list them); what went, oldest first. Rows left (the cutoff's own day,
        or every row where nothing is partitioned) are for a ``DELETE``."""
        ...
