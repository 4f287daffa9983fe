"""Snapshot retention: dataset snapshots past their own retention, files and rows.

A snapshot is training data: a version trained on it names it in its provenance
(``snapshot_id``), the lineage endpoint walks from the version to it, and the callback adopted it
as the version's reference. So snapshots have a retention of their own
(``DRIFTLOOP_RETENTION__SNAPSHOT_DAYS``, off by default: kept forever), and a snapshot that a
registered version names is kept whatever its age (``pinned``) — it goes when the version does.

Files first, row second: the folder ``<out>/<snapshot_id>/`` is removed through fsspec, then the
row. A folder that cannot be removed (permissions, an unreachable bucket) keeps its row, is
counted under ``failed`` and logged with its URI; the next run tries again. A folder already gone
(deleted by hand) does not stop the row from going.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
from sqlalchemy import Engine, delete, select

from driftloop.store import ModelVersion, SnapshotRow
from driftloop.store.engine import reader

__all__ = ["SnapshotPruneReport", "prune_snapshots"]

log = logging.getLogger(__name__)


@dataclass
class SnapshotPruneReport:
    """What a snapshot prune removed (or, in a dry run, would remove)."""

    cutoff: datetime
    dry_run: bool
    removed: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (the ``snapshots`` part of ``driftloop db prune --json``)."""
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "removed": len(self.removed),
            "snapshot_ids": list(self.removed),
            "pinned": list(self.pinned),
            "failed": dict(self.failed),
            "bytes": self.bytes,
        }


def prune_snapshots(
    engine: Engine, cutoff: datetime, *, dry_run: bool = False
) -> SnapshotPruneReport:
    """Remove snapshots created before ``cutoff`` that no registered version names."""
    report = SnapshotPruneReport(cutoff=cutoff, dry_run=dry_run)
    with reader(engine).connect() as connection:
        named = {
            str(provenance.get("snapshot_id"))
            for provenance in connection.scalars(
                select(ModelVersion.provenance).where(ModelVersion.provenance.is_not(None))
            )
            if isinstance(provenance, dict) and provenance.get("snapshot_id")
        }
        old = connection.execute(
            select(SnapshotRow.snapshot_id, SnapshotRow.uri)
            .where(SnapshotRow.created_at < cutoff)
            .order_by(SnapshotRow.created_at, SnapshotRow.id)
        ).all()
    for snapshot_id, uri in old:
        if snapshot_id in named:
            report.pinned.append(snapshot_id)
            continue
        try:
            size = _remove_folder(uri, dry_run=dry_run)
        except (OSError, ValueError, ImportError) as exc:
            report.failed[snapshot_id] = f"{type(exc).__name__}: {exc}"
            log.warning(
                "snapshot %s past its retention is kept: its folder %s could not be removed "
                "(%s); fix the permissions or the credentials and the next prune removes it",
                snapshot_id,
                posixpath.dirname(uri),
                exc,
            )
            continue
        report.bytes += size
        report.removed.append(snapshot_id)
        if not dry_run:
            with engine.begin() as connection:
                connection.execute(
                    delete(SnapshotRow).where(SnapshotRow.snapshot_id == snapshot_id)
                )
    if report.removed:
        log.info(
            "%s %d snapshot(s) created before %s (%d bytes); %d kept because a version names them",
            "would remove" if dry_run else "removed",
            len(report.removed),
            cutoff.isoformat(),
            report.bytes,
            len(report.pinned),
        )
    return report


def _remove_folder(uri: str, *, dry_run: bool) -> int:
    """Remove the snapshot folder holding ``uri`` (its ``data.parquet``); its size in bytes."""
    fs, path = fsspec.core.url_to_fs(uri)
    folder = posixpath.dirname(path)
    if not fs.exists(folder):
        return 0
    size = sum(int(info.get("size") or 0) for info in fs.find(folder, detail=True).values())
    if not dry_run:
        fs.rm(folder, recursive=True)
    return size
