"""Retention in the monitor: the leader's ``prune`` job and the store's size on ``/metrics``.

The prune itself lives in the store (:mod:`driftloop.store.retention`); this module turns the
settings into its policy, runs it every ``retention.interval_seconds`` on the leader, logs what
it dropped, and exports rows and bytes per growing table with the time of the last prune.

Row counts are estimates on PostgreSQL (``pg_class.reltuples``, refreshed by autovacuum's
``ANALYZE``) and exact counts on SQLite (a scan of the smallest index: cheap at the sizes one
SQLite file serves). Bytes per table come from ``pg_total_relation_size`` on PostgreSQL; SQLite
has no cheap per-table size, so it exports the database's used bytes under ``table="_database"``
(PostgreSQL exports ``pg_database_size`` there too). Both are read at most once per
``ttl_seconds`` whatever the scrape rate. The last-prune time and the pruned-row counters are
this process's own (the leader's), like ``driftloop_job_last_success_timestamp_seconds``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from driftloop.expiring import Expiring
from driftloop.settings import Settings
from driftloop.store.archive import ARCHIVED_TABLES, Archive
from driftloop.store.dialect import dialect_named
from driftloop.store.retention import (
    PruneReport,
    RetentionPolicy,
    database_bytes,
    prune,
    table_bytes,
    table_rows,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from driftloop.web.state import MonitorState

__all__ = [
    "JOB_NAME",
    "METRICS",
    "PruneJob",
    "StoreCollector",
    "archive_for",
    "install",
    "retention_policy",
]

log = logging.getLogger(__name__)

JOB_NAME = "prune"
DATABASE = "_database"
"""The ``table`` label of the whole database's size."""

METRICS = {
    "driftloop_store_rows": "Rows per table that grows with traffic (estimate on PostgreSQL).",
    "driftloop_store_bytes": "Bytes per table with its indexes (PostgreSQL); the whole "
    "database's used bytes under table=_database (both databases).",
    "driftloop_store_last_prune_timestamp_seconds": "Unix time this leader last finished a "
    "prune of rows past their retention.",
    "driftloop_store_pruned_rows": "Rows this leader deleted past their retention, by table.",
    "driftloop_archive_rows": "Rows this leader archived to Parquet before pruning, by table.",
    "driftloop_archive_failures": "Partitions (a model's day of a table) this leader failed to "
    "archive; their rows are kept until an archive succeeds.",
}


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The policy ``settings`` describe: everything follows ``retention_days``; minute profiles
    keep the evaluation's own window; pending labels their own setting; the pause between
    batches, unless set, the database's default (``Dialect.prune_pause_seconds``: SQLite's
    writers need a gap, PostgreSQL's do not)."""
    from driftloop.monitor.evaluation.job import MINUTE_BUCKETS_KEPT

    days = timedelta(days=settings.retention_days)
    pending = settings.retention.pending_label_days
    pause = settings.retention.pause_seconds
    if pause is None:
        backend = make_url(settings.database_url).get_backend_name()
        pause = dialect_named(backend).prune_pause_seconds
    return RetentionPolicy(
        records=days,
        pending_labels=timedelta(days=pending) if pending is not None else days,
        profiles=days,
        ood_records=days,
        minute_profiles=MINUTE_BUCKETS_KEPT,
        batch_rows=settings.retention.batch_rows,
        pause_seconds=pause,
    )


def archive_for(settings: Settings) -> Archive | None:
    """A fresh archive of one prune run when ``retention.archive_url`` is set, else None."""
    url = settings.retention.archive_url
    return Archive(url) if url else None


class StoreCollector(Collector):
    """Rows and bytes of the growing tables, the last prune and the rows it pruned."""

    def __init__(self, engine: Engine, ttl_seconds: float = 60.0) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._sizes = Expiring(self._read_sizes, ttl_seconds)
        self.last_prune: float | None = None
        self.pruned: dict[str, int] = {}
        self.archived: dict[str, int] = {}
        self.archive_failures: dict[str, int] | None = None
        """None while archiving is off (no series), else failures per table."""

    def record(self, report: PruneReport) -> None:
        """Remember a finished prune (not a dry run)."""
        with self._lock:
            for table, rows in report.rows().items():
                self.pruned[table] = self.pruned.get(table, 0) + rows
            if report.archive is not None:
                failures = self.archive_failures or dict.fromkeys(ARCHIVED_TABLES, 0)
                for table, count in report.archive["failures"].items():
                    failures[table] = failures.get(table, 0) + count
                self.archive_failures = failures
                for table, rows in report.archive["rows"].items():
                    self.archived[table] = self.archived.get(table, 0) + rows
            finished = report.finished_at or report.started_at
            self.last_prune = finished.timestamp()
        self._sizes.clear()  # the next scrape sees the smaller tables

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the database (used at registration)."""
        yield GaugeMetricFamily("driftloop_store_rows", METRICS["driftloop_store_rows"])
        yield GaugeMetricFamily("driftloop_store_bytes", METRICS["driftloop_store_bytes"])
        yield GaugeMetricFamily(
            "driftloop_store_last_prune_timestamp_seconds",
            METRICS["driftloop_store_last_prune_timestamp_seconds"],
        )
        yield CounterMetricFamily(
            "driftloop_store_pruned_rows", METRICS["driftloop_store_pruned_rows"]
        )
        for name in ("driftloop_archive_rows", "driftloop_archive_failures"):
            yield CounterMetricFamily(name, METRICS[name])

    def _read_sizes(self) -> tuple[dict[str, int], dict[str, int | None]]:
        try:
            rows = table_rows(self._engine)
            sizes = table_bytes(self._engine)
            sizes[DATABASE] = database_bytes(self._engine)
        except SQLAlchemyError:
            log.warning("cannot read the store's size for /metrics", exc_info=True)
            return {}, {}
        return rows, sizes

    def collect(self) -> Iterator[Metric]:
        """One sample per growing table."""
        rows, sizes = self._sizes.get()
        row_family = GaugeMetricFamily(
            "driftloop_store_rows", METRICS["driftloop_store_rows"], labels=["table"]
        )
        for table, value in rows.items():
            row_family.add_metric([table], float(value))
        byte_family = GaugeMetricFamily(
            "driftloop_store_bytes", METRICS["driftloop_store_bytes"], labels=["table"]
        )
        for table, size in sizes.items():
            if size is not None:
                byte_family.add_metric([table], float(size))
        yield row_family
        yield byte_family
        with self._lock:
            last, pruned = self.last_prune, dict(self.pruned)
        if last is not None:
            yield GaugeMetricFamily(
                "driftloop_store_last_prune_timestamp_seconds",
                METRICS["driftloop_store_last_prune_timestamp_seconds"],
                value=last,
            )
        counter = CounterMetricFamily(
            "driftloop_store_pruned_rows", METRICS["driftloop_store_pruned_rows"], labels=["table"]
        )
        for table, value in pruned.items():
            counter.add_metric([table], float(value))
        yield counter
        with self._lock:
            archived, failures = dict(self.archived), self.archive_failures
        if failures is not None:
            for name, values in (
                ("driftloop_archive_rows", archived),
                ("driftloop_archive_failures", failures),
            ):
                family = CounterMetricFamily(name, METRICS[name], labels=["table"])
                for table in ARCHIVED_TABLES:
                    family.add_metric([table], float(values.get(table, 0)))
                yield family


class PruneJob:
    """The job ``fn(state)``: prune what the retention no longer keeps, log what was dropped."""

    def __init__(self, collector: StoreCollector) -> None:
        self.collector = collector

    def __call__(self, state: MonitorState) -> None:
        """Prune once on ``state``'s database."""
        self.run(state)

    def run(self, state: MonitorState) -> PruneReport:
        """Prune once on ``state``'s database and return the report."""
        report = prune(
            state.engine,
            retention_policy(state.settings),
            state.clock.now(),
            archive=archive_for(state.settings),
        )
        report.finished_at = state.clock.now()
        self.collector.record(report)
        if report.total_rows:
            log.info(
                "pruned %s rows past the retention: %s",
                report.total_rows,
                ", ".join(f"{t}={n}" for t, n in report.rows().items() if n),
            )
        for part in report.partitions:
            log.info("dropped partition %s (%s rows, %s bytes)", part.name, part.rows, part.bytes)
        if report.archive is not None and report.archive["partitions"]:
            log.info(
                "archived %s partitions (%s bytes) to %s before pruning",
                report.archive["partitions"],
                report.archive["bytes"],
                report.archive["url"],
            )
        return report


def install(app: FastAPI, state: MonitorState) -> None:
    """Add retention to the monitor app: the ``prune`` job and the store collector; on
    PostgreSQL the ``partitions`` job too (:mod:`driftloop.monitor.partitions`)."""
    from driftloop.monitor import partitions

    collector = StoreCollector(state.engine)
    state.registry.register(collector)
    partitions.install(state)
    if state.settings.retention.enabled:
        state.jobs.add(JOB_NAME, state.settings.retention.interval_seconds, PruneJob(collector))
