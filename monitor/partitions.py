"""Day partitions in the monitor: the leader's ``partitions`` job and their state on ``/metrics``.

On PostgreSQL migrated to 0011, ``records``, ``drift_profiles`` and ``drift_ood_records`` are
partitioned by day (:mod:`driftloop.store.partitions`). The leader keeps partitions ready from
today to ``retention.partitions_ahead_days`` ahead, every ``retention.interval_seconds`` (the
upgrade and ``driftloop monitor`` create them too, so a fresh database ingests at once); the
prune job drops old ones. A row no day partition covers lands in the table's default partition:
never lost, but a sign of a clock far off or of partitions not created, so it is exported
(``driftloop_store_default_partition_rows``) and alerted on. Nothing is registered on SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from driftloop.expiring import Expiring
from driftloop.store.dialect import dialect_of
from driftloop.store.partitions import PARTITIONED, default_partition_rows, list_partitions

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

__all__ = ["JOB_NAME", "METRICS", "PartitionCollector", "PartitionJob", "ensure_ahead", "install"]

log = logging.getLogger(__name__)

JOB_NAME = "partitions"

METRICS = {
    "driftloop_store_default_partition_rows": "Rows in a partitioned table's default partition "
    "(no day partition covered their time: a clock far off, or partitions not created ahead).",
    "driftloop_store_partitions": "Day partitions of a partitioned table (PostgreSQL).",
}


class PartitionJob:
    """The job ``fn(state)``: day partitions from today to ``partitions_ahead_days`` ahead."""

    def __call__(self, state: MonitorState) -> None:
        """Create the missing partitions on ``state``'s database."""
        self.run(state)

    def run(self, state: MonitorState) -> dict[str, list[str]]:
        """Create the missing partitions; return their names per table."""
        ahead = state.settings.retention.partitions_ahead_days
        return ensure_ahead(state.engine, state.clock.now().date(), ahead)


def ensure_ahead(engine: Engine, today: date, ahead: int) -> dict[str, list[str]]:
    """Create the day partitions of ``today .. today + ahead`` that are missing (the job, and
    ``driftloop monitor`` at start so that a fresh day ingests at once); their names per table.
    Nothing on a database without partitions."""
    with engine.begin() as connection:
        created = dialect_of(engine).ensure_partitions(connection, today, ahead)
    made = [name for names in created.values() for name in names]
    if made:
        log.info("created %s partitions: %s", len(made), ", ".join(made))
    return created


class PartitionCollector(Collector):
    """Day partitions per partitioned table and the rows in each default partition."""

    def __init__(self, engine: Engine, ttl_seconds: float = 60.0) -> None:
        self._engine = engine
        self._state = Expiring(self._read, ttl_seconds)

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the database (used at registration)."""
        for name, help_text in METRICS.items():
            yield GaugeMetricFamily(name, help_text)

    def _read(self) -> tuple[dict[str, int], dict[str, int]]:
        try:
            with self._engine.connect() as connection:
                defaults = default_partition_rows(connection)
                days = {
                    table: sum(not p.is_default for p in list_partitions(connection, table))
                    for table in PARTITIONED
                    if table in defaults
                }
        except SQLAlchemyError:
            log.warning("cannot read the partitions for /metrics", exc_info=True)
            return {}, {}
        return defaults, days

    def collect(self) -> Iterator[Metric]:
        """One sample per partitioned table (none on an unpartitioned database)."""
        defaults, days = self._state.get()
        for name, values in (
            ("driftloop_store_default_partition_rows", defaults),
            ("driftloop_store_partitions", days),
        ):
            family = GaugeMetricFamily(name, METRICS[name], labels=["table"])
            for table, value in values.items():
                family.add_metric([table], float(value))
            yield family


def install(state: MonitorState) -> None:
    """On PostgreSQL: the ``partitions`` job and the collector. The job runs whether or not the
    prune does (``retention.enabled``): without it, every row past the days created at start
    would land in the default partition."""
    if not dialect_of(state.engine).supports_partitions:
        return
    state.registry.register(PartitionCollector(state.engine))
    state.jobs.add(JOB_NAME, state.settings.retention.interval_seconds, PartitionJob())
