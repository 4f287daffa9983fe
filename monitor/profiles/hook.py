"""The ingest hook: count each batch into per-minute profiles and flag out-of-distribution rows.

Runs inside the ingest transaction with only the newly stored rows, so resent records are never
counted twice and a failed batch leaves no partial profile behind.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import insert
from sqlalchemy.orm import Session

from driftloop.clock import Clock
from driftloop.monitor.profiles.baselines import BaselineCache
from driftloop.monitor.profiles.store import add_buckets, bucket_start
from driftloop.store import Model, OodRecord
from driftloop.store.records import StoredRecord

__all__ = ["ProfileHook"]


class ProfileHook:
    """``hook(session, model, rows)``: profiles at ingest, plus the input guard."""

    def __init__(self, baselines: BaselineCache, clock: Clock) -> None:
        self.baselines = baselines
        self.clock = clock

    def __call__(self, session: Session, model: Model, rows: list[StoredRecord]) -> None:
        """Add ``rows`` to their buckets; store the ones flagged out of distribution."""
        if not rows:
            return
        baselines = self.baselines.for_versions(session, model, {row.version for row in rows})
        groups: dict[tuple[str, str, datetime], list[StoredRecord]] = defaultdict(list)
        for row in rows:
            groups[(row.version, row.variant, bucket_start(row.ts, "minute"))].append(row)
        # Each version counts on its own reference's layout (its own, or the model's default).
        by_layout: dict[str, dict[tuple[str, str, datetime], NDArray[np.float64]]] = {}
        flagged: list[dict[str, Any]] = []
        for key, members in groups.items():
            baseline = baselines.get(key[0])
            if baseline is None:
                continue  # no usable reference for this version: nothing to count against
            layout = baseline.layout
            vectors = by_layout.setdefault(layout.fingerprint, {})
            vector, flags, reasons = layout.count(
                [m.inputs for m in members], [m.outputs for m in members]
            )
            vectors[key] = vector
            flagged.extend(
                {
                    "model_id": model.id,
                    "version": m.version,
                    "variant": m.variant,
                    "request_id": m.request_id,
                    "ts": m.ts,
                    "features": {"names": why},
                }
                for m, flag, why in zip(members, flags, reasons, strict=True)
                if flag
            )
        for fingerprint in sorted(by_layout):
            add_buckets(session, model.id, fingerprint, by_layout[fingerprint], self.clock.now())
        if flagged:
            session.execute(insert(OodRecord), flagged)
