"""Archive before drop: a day of records and their labels as Parquet on any fsspec URL.

The files, their layout, the manifest and the digests are :mod:`driftloop.store.archive_format`;
this module reads the rows from the database and writes them.

Writes are atomic per file and the manifest is the commit: a part is written under a hidden
temporary name (``.part-N.parquet.<random>.tmp``, skipped by every reader because of the leading
dot), moved to ``part-N.parquet``, and only then is ``_manifest.json`` written (same way). A
crash before the manifest leaves at most a part the manifest does not list, overwritten by the
next run; a later run for the same day (the prune crashed after archiving, or a replay brought
old rows back) adds only the rows the archive does not hold yet, as the next part, so re-running
is idempotent.

The prune (:func:`driftloop.store.retention.prune`) moves its records cutoff back to a midnight
(:meth:`Archive.cutoff`: days go whole), calls :meth:`Archive.before_drop` before it drops a day
partition (PostgreSQL; raising keeps the partition) and :meth:`Archive.before_delete` for each
model before its batched ``DELETE``: every whole day older than the cutoff is archived, oldest
first, and the cutoff moves back to the first day whose archive failed. A failure is counted per
table (:attr:`Archive.failures`), logged once per run with what to do, and the rows stay in the
database until a later run archives them; a day that failed is not tried again in the same run.

Rows written into an old day while it is archived (a replay with an old ``ts``) are not dropped
unarchived: the transaction that drops a partition calls :meth:`Archive.confirm_drop`, which locks
the partition against writes and archives what arrived since; the batched ``DELETE`` deletes no
record above :meth:`Archive.ceiling`, the highest id the archive read (exact on SQLite).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Select, and_, func, or_, select, text

from driftloop.errors import ConfigurationError
from driftloop.store.archive_format import (
    DOCUMENTS,
    KEYS,
    MANIFEST,
    SCHEMAS,
    ArchiveError,
    ArchiveIntegrityError,
    Manifest,
    Part,
    _digest_start,
    _HashingFile,
    partition_path,
    row_digest,
    verify_parts,
)
from driftloop.store.dialect import Dialect, dialect_of
from driftloop.store.engine import reader
from driftloop.store.feedback import PENDING_MODEL, LabelRow
from driftloop.store.tables import Model, RecordRow
from driftloop.urls import redact_text, redact_url

__all__ = [
    "ARCHIVED_TABLES",
    "Archive",
    "archive_day",
    "read_partition",
]

log = logging.getLogger(__name__)

ARCHIVED_TABLES = ("records", "labels")
"""The tables archived before their rows are deleted, in the order they are written."""
FETCH_ROWS = 50_000
"""Rows fetched through SQLAlchemy (SQLite, or inside a locked transaction) at a time, and the
largest row group written."""
ARROW_BATCH_BYTES = 16 << 20
"""About how much the PostgreSQL driver decodes into Arrow before handing over a batch."""

Bind = Engine | Connection
"""Where rows are read: an engine (a connection of its own, from the read pool), or the caller's
connection (inside the transaction that is about to drop a partition: another connection would
wait for that transaction's lock)."""


@contextmanager
def _connect(bind: Bind) -> Iterator[Connection]:
    if isinstance(bind, Connection):
        yield bind
        return
    with reader(bind).connect() as connection:
        yield connection


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _version() -> str:
    import driftloop

    return str(driftloop.__version__)


class Archive:
    """The archive at one fsspec URL (a local path, ``file://``, ``memory://``, ``s3://`` ...).

    Holds what this run archived (:attr:`written`) and failed (:attr:`failures`) for the report.
    The file system is resolved on first use: a URL whose plugin is missing (``s3://`` without
    ``s3fs``) fails the archive (counted, rows kept), not the construction.
    """

    def __init__(self, url: str) -> None:
        if not url:
            raise ConfigurationError("the archive URL is empty (archiving is off)")
        if "::" in url:
            raise ConfigurationError(f"chained URLs are not an archive: {redact_url(url)!r}")
        self.url = url
        self._fs: Any = None
        self._root = ""
        self.written: list[dict[str, Any]] = []
        """One entry per partition this run wrote to: table, model, date, files, rows, bytes."""
        self.failures: dict[str, int] = {}
        """Partitions this run failed to archive, by table."""
        self.errors: list[str] = []
        """The failures' messages (credentials redacted)."""
        self._logged: set[str] = set()
        self._failed_days: set[tuple[int, date]] = set()
        self._seen: dict[tuple[int, date], tuple[int, int]] = {}
        """Per model and day archived this run: the records the database held when they were
        read (all archived), and the highest record id among them."""
        self.planned: list[dict[str, Any]] | None = None
        """A dry run's list of what would be archived (:meth:`plan`)."""

    @property
    def display_url(self) -> str:
        """The URL with credentials redacted (for logs and reports)."""
        return redact_url(self.url)

    def filesystem(self) -> tuple[Any, str]:
        """The fsspec file system and the archive's root path on it."""
        if self._fs is None:
            import fsspec

            try:
                self._fs, root = fsspec.core.url_to_fs(self.url)
            except ImportError as exc:
                raise ArchiveError(
                    f"the archive URL {self.display_url!r} needs an fsspec plugin that is not "
                    f"installed: {exc} (for example pip install s3fs or gcsfs)"
                ) from exc
            self._root = root.rstrip("/")
        return self._fs, self._root

    def folder(self, table: str, model: str, day: date) -> str:
        """The partition folder as a path of the archive's file system."""
        _fs, root = self.filesystem()
        return f"{root}/{partition_path(table, model, day)}"

    def read_manifest(self, table: str, model: str, day: date) -> Manifest | None:
        """The partition's manifest, or None when the partition is not archived."""
        fs, _root = self.filesystem()
        folder = self.folder(table, model, day)
        path = f"{folder}/{MANIFEST}"
        if not fs.exists(path):
            return None
        with fs.open(path, "rb") as handle:
            body = json.loads(handle.read())
        return Manifest.from_dict(body, redact_url(fs.unstrip_protocol(folder)))

    def verify(self, manifest: Manifest) -> pa.Table:
        """Read every part ``manifest`` lists and check its bytes, rows and row digest; return
        the partition's rows. Raises :class:`ArchiveIntegrityError` when anything differs."""
        fs, _root = self.filesystem()
        folder = self.folder(manifest.table, manifest.model, manifest.date)
        return verify_parts(fs, folder, manifest)

    def archive_day(
        self,
        bind: Bind,
        model: Model | tuple[int, str],
        day: date,
        *,
        in_transaction: bool = False,
    ) -> bool:
        """Archive ``model``'s records of UTC day ``day`` and their labels; True when both
        tables are archived (also when nothing was new). Failures are counted, logged once per
        table and run, and return False: the caller must keep the day's rows.

        On PostgreSQL rows are read as Arrow on a connection of their own (ADBC, what is
        committed), unless ``in_transaction``: then through ``bind`` itself (a connection whose
        transaction holds a lock another connection would wait for)."""
        model_id, name = (model.id, model.name) if isinstance(model, Model) else model
        if (model_id, day) in self._failed_days:
            return False  # failed earlier in this run: counted and logged once, not retried
        for table in ARCHIVED_TABLES:
            try:
                self._archive_table(bind, table, model_id, name, day, in_transaction)
            except (OSError, ValueError, ImportError, pa.ArrowException) as exc:
                self._failed_days.add((model_id, day))
                self._failed(table, name, day, exc)
                return False
        return True

    def _failed(self, table: str, model: str, day: date, exc: BaseException) -> None:
        self.failures[table] = self.failures.get(table, 0) + 1
        message = redact_text(f"{table} of model {model!r} on {day.isoformat()}: {exc}")
        self.errors.append(message)
        if table not in self._logged:
            self._logged.add(table)
            fix = (
                "move the damaged partition folder aside (its rows are only there) so that the "
                "day is archived anew"
                if isinstance(exc, ArchiveIntegrityError)
                else "make the destination writable (or install its fsspec plugin), or unset "
                "DRIFTLOOP_RETENTION__ARCHIVE_URL to prune without archiving"
            )
            log.error(
                "cannot archive to %s: %s; its rows are kept until an archive succeeds: %s",
                self.display_url,
                message,
                fix,
            )

    def _archive_table(
        self,
        bind: Bind,
        table: str,
        model_id: int,
        model: str,
        day: date,
        in_transaction: bool = False,
    ) -> Manifest | None:
        fs, _root = self.filesystem()
        folder = self.folder(table, model, day)
        manifest = self.read_manifest(table, model, day)
        known: set[tuple[Any, ...]] = set()
        if manifest is not None:
            archived = self.verify(manifest)
            known = set(zip(*(archived.column(k).to_pylist() for k in KEYS[table]), strict=True))
        else:
            manifest = Manifest(table, model, day, created_at=_now(), driftloop_version=_version())
        schema = SCHEMAS[table]
        name = f"part-{len(manifest.parts)}.parquet"
        final = f"{folder}/{name}"
        temporary = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"
        fs.makedirs(folder, exist_ok=True)
        self._clean(fs, folder, manifest)
        rows = 0
        seen, highest = 0, 0
        digest = _digest_start(schema)
        writer = None
        try:
            for batch in _batches(bind, table, model_id, day, in_transaction):
                seen += batch.num_rows
                if table == "records" and batch.num_rows:
                    highest = max(highest, pc.max(batch.column("id")).as_py())
                if known:
                    batch = _unknown(batch, table, known)
                if batch.num_rows == 0:
                    continue
                if writer is None:
                    handle = fs.open(temporary, "wb")
                    sink = _HashingFile(handle)
                    writer = pq.ParquetWriter(
                        sink, schema, compression="zstd", write_statistics=True
                    )
                writer.write_table(batch, row_group_size=FETCH_ROWS)
                row_digest(batch, digest)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
                handle.close()
        if writer is None:  # nothing (new) to archive
            if table == "records":
                self._seen[(model_id, day)] = (seen, highest)
            return manifest if manifest.parts else None
        fs.mv(temporary, final)
        now = _now()
        part = Part(name, rows, sink.size, sink.sha256.hexdigest(), digest.hexdigest(), now)
        manifest.parts.append(part)
        manifest.updated_at = now
        manifest.driftloop_version = _version()
        manifest.uri = redact_url(fs.unstrip_protocol(folder))
        staged = f"{folder}/.{MANIFEST}.{uuid.uuid4().hex}.tmp"
        with fs.open(staged, "wb") as out:
            out.write(json.dumps(manifest.as_dict(), indent=2, sort_keys=True).encode())
        fs.mv(staged, f"{folder}/{MANIFEST}")
        if table == "records":
            self._seen[(model_id, day)] = (seen, highest)
        self.written.append(
            {
                "table": table,
                "model": model,
                "date": day.isoformat(),
                "files": [redact_url(fs.unstrip_protocol(final))],
                "rows": rows,
                "bytes": sink.size,
            }
        )
        return manifest

    @staticmethod
    def _clean(fs: Any, folder: str, manifest: Manifest) -> None:
        """Remove what a crashed run left: temporary files and parts the manifest does not list."""
        listed = {part.path for part in manifest.parts}
        for path in fs.ls(folder, detail=False):
            name = str(path).rstrip("/").rsplit("/", 1)[-1]
            stale_part = name.startswith("part-") and name not in listed
            if stale_part or (name.startswith(".") and name.endswith(".tmp")):
                fs.rm(path)

    def days(self, bind: Bind, model_id: int, cutoff: datetime) -> Iterator[date]:
        """UTC days (oldest first) with records of the model before ``cutoff`` (a midnight)."""
        after: datetime | None = None
        with _connect(bind) as connection:
            while True:
                query = select(func.min(RecordRow.ts)).where(
                    RecordRow.model_id == model_id, RecordRow.ts < cutoff
                )
                if after is not None:
                    query = query.where(RecordRow.ts >= after)
                oldest = connection.scalar(query)
                if oldest is None:
                    return
                oldest = oldest.astimezone(UTC)
                yield oldest.date()
                after = datetime.combine(oldest.date(), time(), UTC) + timedelta(days=1)

    @staticmethod
    def cutoff(cutoff: datetime) -> datetime:
        """The records cutoff with archiving: the UTC midnight at or before ``cutoff`` (days are
        archived whole, so a day's rows go when the whole day is past the retention)."""
        return datetime.combine(cutoff.astimezone(UTC).date(), time(), UTC)

    def before_delete(self, bind: Bind, model_id: int, cutoff: datetime) -> datetime:
        """Archive every whole day of the model's records before ``cutoff``, oldest first, and
        return the cutoff the prune may delete up to: ``cutoff`` floored to a midnight, or the
        start of the first day whose archive failed."""
        cut = self.cutoff(cutoff)
        with _connect(bind) as connection:
            name = connection.scalar(select(Model.name).where(Model.id == model_id))
        if name is None:
            return cut
        for day in list(self.days(bind, model_id, cut)):
            if not self.archive_day(bind, (model_id, name), day):
                return datetime.combine(day, time(), UTC)
        return cut

    def archive_range(self, bind: Bind, lower: datetime, upper: datetime) -> bool:
        """Archive every model's records in ``[lower, upper)`` by whole days (a time partition
        about to be dropped); True when all are archived, so the rows may go."""
        with _connect(bind) as connection:
            models = list(connection.execute(select(Model.id, Model.name).order_by(Model.id)))
        ok = True
        for model_id, name in models:
            for day in list(self.days(bind, model_id, upper)):
                if datetime.combine(day, time(), UTC) < lower:
                    continue
                ok = self.archive_day(bind, (model_id, name), day) and ok
        return ok

    def before_drop(
        self, connection: Connection, table: str, partition: str, lower: datetime, upper: datetime
    ) -> None:
        """The partition drop's hook (:data:`driftloop.store.partitions.BeforeDrop`), called
        before the drop's transaction: archive the records of ``[lower, upper)`` (and their
        labels); raise :class:`ArchiveError` when that failed, which keeps the partition.
        :meth:`confirm_drop` then catches up, under a lock, with rows written meanwhile. Other
        tables (drift profiles, flagged records) are not archived."""
        if table != "records":
            return
        if not self.archive_range(connection, lower, upper):
            raise ArchiveError(
                f"partition {partition} is kept: archiving it to {self.display_url} failed "
                f"({self.errors[-1] if self.errors else 'see the log'})"
            )

    def ceiling(self, model_id: int) -> int:
        """The highest record id of ``model_id`` this run archived (0: none). The batched
        ``DELETE`` after :meth:`before_delete` deletes no record above it, so that a record
        written into an archived day after the archive read it (a late replay) stays for the
        next run instead of going unarchived (exact on SQLite, whose ids follow commit order)."""
        return max((high for (m, _), (_, high) in self._seen.items() if m == model_id), default=0)

    def confirm_drop(
        self, connection: Connection, table: str, partition: str, lower: datetime, upper: datetime
    ) -> None:
        """The dropping transaction's last look at a partition :meth:`before_drop` archived
        (``drop_partitions_before``'s hook, PostgreSQL): lock the partition against writes
        (``SHARE``: only a write into that old day waits; ingest of other days goes on), and
        archive any record that arrived after the archive read the day (a late replay), through
        that transaction. Raises :class:`ArchiveError` when that fails, which keeps the
        partition."""
        if table != "records":
            return
        quoted = connection.dialect.identifier_preparer.quote(partition)
        connection.execute(text(f"LOCK TABLE {quoted} IN SHARE MODE"))
        held = connection.execute(
            text(f"SELECT model_id, count(*), max(id) FROM {quoted} GROUP BY model_id")
        ).all()
        names = dict(connection.execute(select(Model.id, Model.name)).all())
        days = _days_between(lower, upper)
        for model_id, count, highest in held:
            seen = [self._seen.get((model_id, day), (0, 0)) for day in days]
            if count == sum(n for n, _ in seen) and highest <= max(h for _, h in seen):
                continue
            name = names.get(model_id, f"#{model_id}")  # records of a model row gone
            for day in days:
                if not self.archive_day(connection, (model_id, name), day, in_transaction=True):
                    raise ArchiveError(
                        f"partition {partition} is kept: archiving rows that arrived during "
                        f"its archive failed ({self.errors[-1] if self.errors else 'see the log'})"
                    )

    def plan(self, bind: Bind, model_ids: list[int], cutoff: datetime) -> list[dict[str, Any]]:
        """A dry run's view (:attr:`planned`): per model and whole UTC day before ``cutoff``, the
        records a prune would archive first and whether the day is archived already (its
        manifest exists; files are not read). One indexed count per model and day; labels are
        not counted (a join per day)."""
        cut = self.cutoff(cutoff)
        planned: list[dict[str, Any]] = []
        with _connect(bind) as connection:
            names = dict(connection.execute(select(Model.id, Model.name)).all())
        for model_id in model_ids:
            name = names.get(model_id)
            if name is None:
                continue
            for day in list(self.days(bind, model_id, cut)):
                since = datetime.combine(day, time(), UTC)
                with _connect(bind) as connection:
                    count = connection.scalar(
                        select(func.count()).where(
                            RecordRow.model_id == model_id,
                            RecordRow.ts >= since,
                            RecordRow.ts < since + timedelta(days=1),
                        )
                    )
                try:
                    manifest = self.read_manifest("records", name, day)
                    archived: int | None = None if manifest is None else manifest.rows
                    error = None
                except (OSError, ValueError, ImportError) as exc:
                    archived, error = None, redact_text(str(exc))
                planned.append(
                    {
                        "model": name,
                        "date": day.isoformat(),
                        "records": int(count or 0),
                        "archived_rows": archived,
                        "error": error,
                    }
                )
        self.planned = planned
        return planned

    def summary(self) -> dict[str, Any]:
        """What this run archived and failed to (``driftloop db prune --json``'s ``archive``)."""
        return {
            "url": self.display_url,
            "partitions": len(self.written),
            "files": [path for entry in self.written for path in entry["files"]],
            "rows": {
                table: sum(e["rows"] for e in self.written if e["table"] == table)
                for table in ARCHIVED_TABLES
            },
            "bytes": sum(entry["bytes"] for entry in self.written),
            "failures": dict(self.failures),
            "errors": list(self.errors),
            "written": list(self.written),
            "planned": self.planned,
        }


def _days_between(lower: datetime, upper: datetime) -> list[date]:
    """The UTC days that ``[lower, upper)`` touches."""
    day = lower.astimezone(UTC).date()
    days = []
    while datetime.combine(day, time(), UTC) < upper:
        days.append(day)
        day += timedelta(days=1)
    return days


def _unknown(batch: pa.Table, table: str, known: set[tuple[Any, ...]]) -> pa.Table:
    keys = zip(*(batch.column(k).to_pylist() for k in KEYS[table]), strict=True)
    keep = [key not in known for key in keys]
    return batch.filter(pa.array(keep, type=pa.bool_()))


def _select(
    table: str, model_id: int, since: datetime, until: datetime, dialect: Dialect
) -> Select:
    day_records = and_(RecordRow.model_id == model_id, RecordRow.ts >= since, RecordRow.ts < until)
    if table == "records":
        r = RecordRow
        return (
            select(
                r.id,
                r.model_id,
                r.version,
                r.variant,
                r.request_id,
                r.ts,
                dialect.json_text(r.inputs),
                dialect.json_text(r.outputs),
                r.latency_ms,
                r.status,
                r.received_at,
            )
            .where(day_records)
            .order_by(r.id)
        )
    label = LabelRow
    joined = select(RecordRow.request_id).where(
        day_records,
        RecordRow.request_id == label.request_id,
        or_(label.model_id == PENDING_MODEL, RecordRow.model_id == label.model_id),
    )
    return (
        select(
            label.id,
            label.model_id,
            label.request_id,
            dialect.json_text(label.label),
            label.label_ts,
            label.received_at,
            label.updated_at,
            label.corrections,
        )
        .where(label.model_id.in_([model_id, PENDING_MODEL]), joined.exists())
        .order_by(label.id)
    )


def _batches(
    bind: Bind, table: str, model_id: int, day: date, in_transaction: bool = False
) -> Iterator[pa.Table]:
    """The day's rows of ``table`` as Arrow tables: decoded by the driver where the dialect
    reads Arrow (PostgreSQL, about :data:`ARROW_BATCH_BYTES` each, on a connection of its own)
    unless ``in_transaction``, else fetched through ``bind``, :data:`FETCH_ROWS` at a time."""
    since = datetime.combine(day, time(), UTC)
    dialect = dialect_of(bind)
    statement = _select(table, model_id, since, since + timedelta(days=1), dialect)
    schema = SCHEMAS[table]
    if dialect.reads_arrow and not in_transaction:
        with dialect.arrow_batches(bind, statement, batch_bytes=ARROW_BATCH_BYTES) as batches:
            for batch in batches:
                if batch.num_rows:
                    yield pa.Table.from_batches([batch]).rename_columns(schema.names).cast(schema)
        return
    with _connect(bind) as connection:
        # Per statement: Connection.execution_options() would change the caller's connection.
        result = connection.execute(statement, execution_options={"yield_per": FETCH_ROWS})
        for rows in result.partitions():
            # SQLite gives a JSON scalar with a numeric look back as a number (the JSON column
            # has numeric affinity): render it as the JSON text it was.
            columns = [
                _json_text(values) if f.name in DOCUMENTS else list(values)
                for values, f in zip(zip(*rows, strict=True), schema, strict=True)
            ]
            yield pa.Table.from_arrays(
                [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)],
                schema=schema,
            )


def _json_text(values: tuple[Any, ...]) -> list[Any]:
    return [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]


def archive_day(bind: Bind, model: Model | tuple[int, str], day: date, url: str) -> Manifest:
    """Archive ``model``'s records of ``day`` and their labels under ``url`` and return the
    records' manifest; raises :class:`ArchiveError` when the archive cannot be written."""
    archive = Archive(url)
    if not archive.archive_day(bind, model, day):
        raise ArchiveError(f"cannot archive to {archive.display_url}: {archive.errors[-1]}")
    name = model.name if isinstance(model, Model) else model[1]
    manifest = archive.read_manifest("records", name, day)
    if manifest is None:
        raise ArchiveError(f"model {name!r} has no records on {day.isoformat()} to archive")
    return manifest


def read_partition(url: str, table: str, model: str, day: date) -> pa.Table | None:
    """The verified rows of one archived partition, or None when it is not archived."""
    archive = Archive(url)
    manifest = archive.read_manifest(table, model, day)
    return None if manifest is None else archive.verify(manifest)
