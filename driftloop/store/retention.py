"""Retention: delete what is older than the settings keep, in bounded batches.

Raw records, labels of the records pruned, pending labels past their window, drift profiles and
flagged (out-of-distribution) records. Every table is pruned in batches of ``batch_rows`` rows,
each in its own committed transaction, so ingest waits at most one batch for SQLite's write lock,
never a whole month's ``DELETE``; ``pause_seconds`` between batches lets a waiting writer in
(SQLite's lock is not fair). On PostgreSQL a ``DELETE`` does not block inserts; batches there
bound each transaction, and a records batch is one statement (data-modifying CTEs).

A record's labels go in the same transaction as the record, once no other stored record (another
variant or model logged the same request id) still joins them. A label is *pending* while no
record shows its request id (a label may arrive first); pending labels received before their
window are dropped. Both passes report separately; the dry run counts the same rows with the
same predicates and deletes nothing.

Records are found per known model on the ``(model_id, ts)`` index; records whose model row no
longer exists are not visited (a scan of the whole table per run would cost more than they do;
``records`` has no foreign key, see migration 0007).

Bytes: on PostgreSQL ``pg_total_relation_size`` (table, indexes, TOAST) before and after; a
``DELETE`` frees space for reuse by later inserts (autovacuum) rather than shrinking the files, so
"after" drops little until a ``VACUUM FULL``. On SQLite the database's used bytes
(``(page_count - freelist_count) * page_size``): freed pages go to the free list, reused by
later inserts.

On PostgreSQL, tables partitioned by day (migration 0011: ``records``, ``drift_profiles``,
``drift_ood_records``; see :mod:`driftloop.store.partitions`) first lose every day partition
entirely older than their cutoff, whole (detach and drop: no row-by-row delete, no vacuum, the
bytes go back to the file system). For ``records``, each partition's labels that no other record
joins go first, in the same bounded batches, and ``before_drop`` (an archive's hook) sees the
partition before either. The batched ``DELETE`` then takes the rest: the day the cutoff falls in,
and rows in the default partition. A partition that could not be dropped (its lock not granted
in time, its archive failed) stays until the next run, and the ``DELETE`` leaves its rows alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    String,
    Table,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)

from driftloop.store.dialect import dialect_of
from driftloop.store.drift import DriftProfile, OodRecord
from driftloop.store.engine import reader
from driftloop.store.feedback import PENDING_MODEL, LabelRow
from driftloop.store.partitions import PARTITIONED, BeforeDrop, DroppedPartition, Partition
from driftloop.store.retention_report import (
    GROWING_TABLES,
    PruneReport,
    PruneStep,
    RetentionPolicy,
)
from driftloop.store.tables import Model, RecordRow

if TYPE_CHECKING:
    from driftloop.store.archive import Archive

__all__ = [
    "GROWING_TABLES",
    "PruneReport",
    "PruneStep",
    "RetentionPolicy",
    "database_bytes",
    "prune",
    "table_bytes",
    "table_rows",
]

log = logging.getLogger(__name__)

_records: Table = RecordRow.__table__  # type: ignore[assignment]
_labels: Table = LabelRow.__table__  # type: ignore[assignment]
_profiles: Table = DriftProfile.__table__  # type: ignore[assignment]
_ood: Table = OodRecord.__table__  # type: ignore[assignment]
_models: Table = Model.__table__  # type: ignore[assignment]


Progress = Callable[[str, int], None]
"""Called as ``progress(table, rows_so_far)`` after each batch."""


def prune(
    engine: Engine,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    archive: Archive | None = None,
    before_drop: BeforeDrop | None = None,
) -> PruneReport:
    """Delete (or with ``dry_run`` count) everything ``policy`` no longer keeps at ``now``.

    With ``archive``, records go by whole UTC days, each archived with its labels first; a day
    whose archive failed is kept (:meth:`~driftloop.store.archive.Archive.before_delete`).
    ``before_drop`` (default: the archive's ``before_drop``, if it has one) is called before a
    day partition is dropped; an ``OSError`` from it keeps that partition and the later ones of
    its table until the next run. With an archive but no such hook, no partition is dropped
    (the archive's ``DELETE`` path takes the rows)."""
    report = PruneReport(dry_run=dry_run, started_at=now, dialect=dialect_of(engine).name)
    report.bytes_before = table_bytes(engine)
    report.database_bytes_before = database_bytes(engine)
    tick = progress or (lambda _table, _rows: None)
    records_cut = now - policy.records
    if archive is not None:
        records_cut = archive.cutoff(records_cut)
    with reader(engine).connect() as connection:
        model_ids = list(connection.scalars(select(_models.c.id).order_by(_models.c.id)))

    step = PruneStep("records", "older than the retention", records_cut)
    labels_step = PruneStep("labels", "their records were pruned", records_cut)
    pending_step = PruneStep("labels", "pending past their window", now - policy.pending_labels)
    report.steps += [step, labels_step]

    hook = before_drop if before_drop is not None else getattr(archive, "before_drop", None)
    cuts = {
        "records": records_cut,
        "drift_profiles": now - policy.profiles,
        "drift_ood_records": now - policy.ood_records,
    }
    kept: dict[str, Any] = {}  # per partitioned table: the rows the DELETE passes may visit
    floors: dict[str, datetime] = {}
    if archive is None or hook is not None:
        for name in PARTITIONED:
            dropped, kept[name], floors[name] = _drop_partitions(
                engine, name, cuts[name], dry_run, hook, policy, labels_step, archive
            )
            report.partitions += dropped
            if dropped:
                tick(name, sum(p.rows for p in dropped))
    if dry_run:
        with reader(engine).connect() as connection:
            step.rows = _count(
                connection, _old_records(model_ids, records_cut).where(kept.get("records", true()))
            )
            labels_step.rows = _count_labels_of_pruned(connection, model_ids, records_cut)
            tick("records", step.rows)
        if archive is not None:  # what would be archived first, per model and day
            archive.plan(engine, model_ids, records_cut)
    else:
        for model_id in model_ids:
            cut = (
                records_cut
                if archive is None
                else archive.before_delete(engine, model_id, records_cut)
            )
            floor = floors.get("records", _NO_FLOOR)
            # Not above what the archive read: a record replayed into an archived day meanwhile
            # waits for the next run's archive.
            ceiling = None if archive is None else archive.ceiling(model_id)
            batches = _prune_records(engine, model_id, cut, policy.batch_rows, floor, ceiling)
            for deleted, labels in batches:
                step.rows += deleted
                labels_step.rows += labels
                tick("records", step.rows)
                _pause(policy)

    report.steps.append(pending_step)
    pending = _pending_labels(pending_step.cutoff)
    if dry_run:
        with reader(engine).connect() as connection:
            pending_step.rows = _count(connection, select(_labels.c.id).where(pending))
    else:
        pending_step.rows = _delete_keyset(
            engine, _labels, pending, policy, _ticker(tick, "labels")
        )

    profile_passes: list[tuple[PruneStep, Any]] = []
    old_profiles: Any = _profiles.c.start < now - policy.profiles
    if policy.minute_profiles is not None:
        cut = now - policy.minute_profiles
        minutes = (_profiles.c.grain == "minute") & (_profiles.c.start < cut)
        profile_passes.append(
            (PruneStep("drift_profiles", "minute buckets past their window", cut), minutes)
        )
        old_profiles = old_profiles & ~minutes  # each row counted by one pass, dry or not
    profile_passes.append(
        (
            PruneStep("drift_profiles", "older than the retention", now - policy.profiles),
            old_profiles,
        )
    )
    cut = now - policy.ood_records
    profile_passes.append(
        (PruneStep("drift_ood_records", "older than the retention", cut), _ood.c.ts < cut)
    )
    for pass_step, where in profile_passes:
        report.steps.append(pass_step)
        table = _ood if pass_step.table == "drift_ood_records" else _profiles
        where = where & kept.get(table.name, true())
        if dry_run:
            with reader(engine).connect() as connection:
                pass_step.rows = _count(connection, select(table.c.id).where(where))
        else:
            pass_step.rows = _delete_keyset(
                engine, table, where, policy, _ticker(tick, pass_step.table)
            )

    if archive is not None:
        report.archive = archive.summary()
    if not dry_run:
        report.bytes_after = table_bytes(engine)
        report.database_bytes_after = database_bytes(engine)
    return report


_NO_FLOOR = datetime(1, 1, 1, tzinfo=UTC)

_PARTITION_LABELS = text(
    # The labels of a batch of the partition's records (walked in id order, so each record once)
    # that no record outside the partition joins. Driven by the partition, never by all labels,
    # and "outside" is "outside the partition's range" (no other partition holds a row inside
    # it), not "tableoid <> the partition", which the planner estimates at one row a partition
    # and anti-joins against a scan of every record. Labels are found by their request id index
    # (``= ANY``: a join from the batch let the planner hash all labels each batch), each then one
    # index probe per partition: the cost follows the partition, not the tables.
    """
    WITH chunk AS (
        SELECT id, request_id, model_id FROM {partition}
        WHERE id > :last ORDER BY id LIMIT :batch
    ), doomed AS (
        SELECT l.id FROM labels l
        WHERE l.request_id = ANY (ARRAY(SELECT request_id FROM chunk))
        AND EXISTS (
            SELECT 1 FROM chunk p WHERE p.request_id = l.request_id
            AND l.model_id IN (p.model_id, :pending)
        ) AND NOT EXISTS (
            SELECT 1 FROM records x WHERE x.request_id = l.request_id
            AND (l.model_id = :pending OR x.model_id = l.model_id)
            AND (x.ts < :lower OR x.ts >= :upper)
        )
    ), gone AS (
        DELETE FROM labels USING doomed WHERE labels.id = doomed.id RETURNING labels.id
    )
    SELECT (SELECT count(*) FROM chunk), (SELECT max(id) FROM chunk),
        (SELECT count(*) FROM gone)
    """
)


def _drop_partitions(
    engine: Engine,
    table: str,
    cutoff: datetime,
    dry_run: bool,
    hook: BeforeDrop | None,
    policy: RetentionPolicy,
    labels_step: PruneStep,
    archive: Archive | None = None,
) -> tuple[list[DroppedPartition], Any, datetime]:
    """Drop ``table``'s day partitions older than ``cutoff``, oldest first, each in its own
    transaction after its labels (records). Return what went, the rows the ``DELETE`` passes
    may still visit, and the earliest time they may delete from (the upper bound of an old
    partition that stays)."""
    dialect = dialect_of(engine)
    with engine.connect() as connection:
        parts = dialect.partitions(connection, table)
    if not parts:  # not partitioned (SQLite, or PostgreSQL before migration 0011)
        return [], true(), _NO_FLOOR
    old = [(p, p.upper) for p in parts if p.upper is not None and p.upper <= cutoff]
    if dry_run:
        with engine.connect() as connection:
            dropped = dialect.drop_partitions_before(connection, table, cutoff, dry_run=True)
        names = [p.name for p in dropped]
        where = (
            literal_column(f"{table}.tableoid::regclass::text").not_in(names) if names else true()
        )
        return dropped, where, _NO_FLOOR
    dropped = []
    confirm = archive.confirm_drop if archive is not None else None  # rows that came meanwhile
    for part, upper in old:
        try:
            if hook is not None:
                with engine.connect() as connection:
                    hook(connection, table, part.name, part.lower or upper, upper)
            if table == "records":
                labels_step.rows += _drop_labels_of_partition(engine, part, policy)
            with engine.begin() as connection:
                gone = dialect.drop_partitions_before(connection, table, upper, before_drop=confirm)
        except OSError:
            log.warning("kept partition %s: its archive failed", part.name, exc_info=True)
            gone = []
        if not gone:  # lock not granted in time, or the archive failed: the next run retries
            return dropped, _key(table) >= upper, upper
        dropped += gone
    return dropped, true(), _NO_FLOOR


def _key(table: str) -> Any:
    return {"records": _records, "drift_profiles": _profiles, "drift_ood_records": _ood}[table].c[
        PARTITIONED[table]
    ]


def _drop_labels_of_partition(engine: Engine, partition: Partition, policy: RetentionPolicy) -> int:
    statement = text(_PARTITION_LABELS.text.replace("{partition}", partition.name))
    last, total = 0, 0
    while True:
        with engine.begin() as connection:
            found, newest, deleted = connection.execute(
                statement,
                {
                    "last": last,
                    "pending": PENDING_MODEL,
                    "lower": partition.lower,
                    "upper": partition.upper,
                    "batch": policy.batch_rows,
                },
            ).one()
        total += int(deleted)
        if found < policy.batch_rows:
            return total
        last = int(newest)
        _pause(policy)


def _ticker(tick: Progress, table: str) -> Callable[[int], None]:
    return lambda rows: tick(table, rows)


def _old_records(model_ids: list[int], cutoff: datetime) -> Any:
    return select(_records.c.id).where(_records.c.model_id.in_(model_ids), _records.c.ts < cutoff)


def _count(connection: Connection, query: Any) -> int:
    return int(connection.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _joins(record: Any) -> Any:
    """A record ``record`` that joins the label row of ``labels``."""
    return (record.c.request_id == _labels.c.request_id) & or_(
        _labels.c.model_id == PENDING_MODEL, record.c.model_id == _labels.c.model_id
    )


def _count_labels_of_pruned(connection: Connection, model_ids: list[int], cutoff: datetime) -> int:
    """Labels joined by a record about to be pruned and by no record that stays."""
    old = _records.alias("old")
    kept = _records.alias("kept")
    query = select(_labels.c.id).where(
        exists(
            select(1)
            .select_from(old)
            .where(_joins(old), old.c.model_id.in_(model_ids), old.c.ts < cutoff)
        ),
        ~exists(
            select(1)
            .select_from(kept)
            .where(_joins(kept), or_(kept.c.ts >= cutoff, kept.c.model_id.not_in(model_ids)))
        ),
    )
    return _count(connection, query)


def _pending_labels(cutoff: datetime) -> Any:
    """Labels received before ``cutoff`` that no stored record joins."""
    joined = _records.alias("joined")
    return (_labels.c.received_at < cutoff) & ~exists(
        select(1).select_from(joined).where(_joins(joined))
    )


def _prune_records(
    engine: Engine,
    model_id: int,
    cutoff: datetime,
    batch: int,
    floor: datetime = _NO_FLOOR,
    ceiling: int | None = None,
) -> Iterator[tuple[int, int]]:
    """Delete one model's old records batch by batch, each with the labels only it joined;
    yield ``(records, labels)`` deleted per committed batch."""
    oldest = (
        select(_records.c.id, _records.c.request_id)
        .where(_records.c.model_id == model_id, _records.c.ts < cutoff)
        .order_by(_records.c.ts)
        .limit(batch)
    )
    if ceiling is not None:
        oldest = oldest.where(_records.c.id <= ceiling)
    remaining = _records.alias("remaining")
    dialect = dialect_of(engine)
    orphaned = delete(_labels).where(
        dialect.listed(_labels.c.request_id, "request_ids", String()),
        _labels.c.model_id.in_([model_id, PENDING_MODEL]),
        ~exists(select(1).select_from(remaining).where(_joins(remaining))),
    )
    if dialect.modifying_ctes:
        yield from _prune_records_pg(engine, model_id, cutoff, batch, floor, ceiling)
        return
    while True:
        with engine.begin() as connection:
            found = connection.execute(oldest).all()
            labels = 0
            if found:
                connection.execute(
                    delete(_records).where(dialect.listed(_records.c.id, "ids", BigInteger())),
                    {"ids": [row.id for row in found]},
                )
                request_ids = sorted({row.request_id for row in found})
                labels = connection.execute(orphaned, {"request_ids": request_ids}).rowcount
        if found:
            yield len(found), labels
        if len(found) < batch:
            return


_PG_BATCH = text(
    # One statement per batch (no ids through Python). Every part of a statement sees the same
    # snapshot, so "no record still joins the label" must leave out the batch's own records.
    """
    WITH doomed AS (
        SELECT id, request_id FROM records
        WHERE model_id = :model_id AND ts < :cutoff AND ts >= :floor AND id <= :ceiling
        ORDER BY ts LIMIT :batch
    ), gone AS (
        DELETE FROM records r USING doomed d WHERE r.id = d.id RETURNING r.id
    ), orphaned AS (
        DELETE FROM labels l USING (SELECT DISTINCT request_id FROM doomed) g
        WHERE l.request_id = g.request_id AND l.model_id IN (:model_id, :pending)
        AND NOT EXISTS (
            SELECT 1 FROM records x
            WHERE x.request_id = l.request_id
            AND (l.model_id = :pending OR x.model_id = l.model_id)
            AND x.id NOT IN (SELECT id FROM doomed)
        )
        RETURNING l.id
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM orphaned)
    """
)


def _prune_records_pg(
    engine: Engine,
    model_id: int,
    cutoff: datetime,
    batch: int,
    floor: datetime,
    ceiling: int | None = None,
) -> Iterator[tuple[int, int]]:
    params = {
        "model_id": model_id,
        "cutoff": cutoff,
        "floor": floor,
        "ceiling": 2**63 - 1 if ceiling is None else ceiling,
        "batch": batch,
        "pending": PENDING_MODEL,
    }
    while True:
        with engine.begin() as connection:
            records, labels = connection.execute(_PG_BATCH, params).one()
        if records:
            yield int(records), int(labels)
        if records < batch:
            return


def _delete_keyset(
    engine: Engine, table: Table, where: Any, policy: RetentionPolicy, tick: Callable[[int], None]
) -> int:
    """Delete the rows of ``table`` matching ``where``, ``batch`` ids per transaction, walking the
    primary key so that rows the predicate keeps are visited once."""
    batch = policy.batch_rows
    last = 0
    total = 0
    # One array parameter on PostgreSQL (an IN of 5,000 parameters cost more to parse and plan
    # than the delete), an expanding IN on SQLite.
    doomed = delete(table).where(dialect_of(engine).listed(table.c.id, "ids", BigInteger()))
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.scalars(
                    select(table.c.id)
                    .where(table.c.id > last, where)
                    .order_by(table.c.id)
                    .limit(batch)
                )
            )
            if ids:
                total += connection.execute(doomed, {"ids": ids}).rowcount
        if ids:
            last = ids[-1]
            tick(total)
            _pause(policy)
        if len(ids) < batch:
            return total


def _pause(policy: RetentionPolicy) -> None:
    if policy.pause_seconds > 0:
        time.sleep(policy.pause_seconds)


def table_rows(engine: Engine, *, estimate: bool = True) -> dict[str, int]:
    """Rows per growing table, as the dialect's ``table_rows`` gives them: PostgreSQL's planner
    estimate (``pg_class.reltuples``, exact after ``ANALYZE``; a count where the table was never
    analysed), or an exact count on SQLite (or with ``estimate=False``). A partitioned table sums
    its partitions, each estimated or counted alike (autovacuum analyses partitions, never their
    parent)."""
    dialect = dialect_of(engine)
    with reader(engine).connect() as connection:
        return {
            name: dialect.table_rows(connection, name, estimate=estimate) for name in GROWING_TABLES
        }


def table_bytes(engine: Engine) -> dict[str, int | None]:
    """Bytes per growing table with its indexes, as the dialect's ``table_bytes`` gives them:
    ``pg_total_relation_size`` on PostgreSQL (all partitions summed); on SQLite ``None``
    (per-table sizes need a walk of every page; see :func:`database_bytes`)."""
    dialect = dialect_of(engine)
    with engine.connect() as connection:
        return {name: dialect.table_bytes(connection, name) for name in GROWING_TABLES}


def database_bytes(engine: Engine) -> int | None:
    """Bytes the whole database uses, as the dialect's ``database_bytes`` gives them:
    ``pg_database_size`` on PostgreSQL; on SQLite the pages in use (``(page_count -
    freelist_count) * page_size``; deleted rows' pages are free)."""
    with reader(engine).connect() as connection:
        return dialect_of(engine).database_bytes(connection)
