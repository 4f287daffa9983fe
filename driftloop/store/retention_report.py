"""What a prune is asked to keep (:class:`RetentionPolicy`) and what it reports
(:class:`PruneReport`): the terms of :func:`driftloop.store.retention.prune`, apart from how it
deletes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from driftloop.store.partitions import DroppedPartition

__all__ = ["GROWING_TABLES", "PruneReport", "PruneStep", "RetentionPolicy"]

GROWING_TABLES = ("records", "labels", "drift_profiles", "drift_ood_records")
"""The tables that grow with traffic, in the order they are pruned."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, and the rows deleted per transaction."""

    records: timedelta
    """Raw records (by prediction time ``ts``); their labels go with them."""
    pending_labels: timedelta
    """Labels no stored record joins, by the time they were received."""
    profiles: timedelta
    """Drift profiles of every grain (by bucket start)."""
    ood_records: timedelta
    """Records the input guard flagged (by prediction time)."""
    minute_profiles: timedelta | None = None
    """Minute-grain profiles, when kept shorter than the others."""
    batch_rows: int = 5000
    pause_seconds: float = 0.0
    """Wait between batches. SQLite's lock is not fair: a writer that commits and begins again
    at once keeps it, while a waiting writer sleeps in its busy handler (up to 100 ms a try)."""

    def __post_init__(self) -> None:
        if self.batch_rows <= 0:
            raise ValueError(f"batch_rows must be positive, got {self.batch_rows}")


@dataclass
class PruneStep:
    """Rows one pass deleted (or, in a dry run, would delete)."""

    table: str
    reason: str
    cutoff: datetime
    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "table": self.table,
            "reason": self.reason,
            "cutoff": self.cutoff.isoformat(),
            "rows": self.rows,
        }


@dataclass
class PruneReport:
    """What a prune dropped: rows per pass and table, bytes before and after."""

    dry_run: bool
    started_at: datetime
    dialect: str
    steps: list[PruneStep] = field(default_factory=list)
    bytes_before: dict[str, int | None] = field(default_factory=dict)
    bytes_after: dict[str, int | None] = field(default_factory=dict)
    database_bytes_before: int | None = None
    database_bytes_after: int | None = None
    finished_at: datetime | None = None
    archive: dict[str, Any] | None = None
    """What was archived before the drop (:meth:`driftloop.store.archive.Archive.summary`)."""
    partitions: list[DroppedPartition] = field(default_factory=list)
    """Day partitions dropped whole (PostgreSQL), oldest first per table; their rows are not in
    ``steps``."""

    def rows(self) -> dict[str, int]:
        """Rows deleted per table (all passes and dropped partitions summed)."""
        out = dict.fromkeys(GROWING_TABLES, 0)
        for step in self.steps:
            out[step.table] = out.get(step.table, 0) + step.rows
        for part in self.partitions:
            out[part.table] = out.get(part.table, 0) + part.rows
        return out

    @property
    def total_rows(self) -> int:
        """Rows deleted in all."""
        return sum(step.rows for step in self.steps) + sum(p.rows for p in self.partitions)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``driftloop db prune --json`` prints)."""
        rows = self.rows()
        return {
            "dry_run": self.dry_run,
            "dialect": self.dialect,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "rows": self.total_rows,
            "steps": [step.as_dict() for step in self.steps],
            "partitions": [part.as_dict() for part in self.partitions],
            "tables": {
                name: {
                    "rows": rows[name],
                    "partitions": sum(1 for p in self.partitions if p.table == name),
                    "bytes_before": self.bytes_before.get(name),
                    "bytes_after": self.bytes_after.get(name),
                }
                for name in GROWING_TABLES
            },
            "database_bytes_before": self.database_bytes_before,
            "database_bytes_after": self.database_bytes_after,
            "archive": self.archive,
        }
