"""Record ingest: one batch, one transaction, idempotent on ``(model, request_id, variant)``.

Nothing is acknowledged before the commit returns; a failed commit leaves no row behind because
every insert of the batch, and every ingest hook, runs in the same transaction.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from driftloop.contract import Batch, Record
from driftloop.monitor.registry import ensure_models, ensure_versions
from driftloop.monitor.state import MonitorState
from driftloop.monitor.writer import insert_new


@dataclass(frozen=True)
class IngestResult:
    """What one batch did: rows stored and rows already present."""

    batch_id: str
    received: int
    stored: int
    duplicates: int


def ingest_batch(state: MonitorState, batch: Batch) -> IngestResult:
    """Store ``batch``; return counts. Raises SQLAlchemy errors when the database fails."""
    start = time.perf_counter()
    now = state.clock.now()
    # Variant is a StrEnum: a member is its own value (``.value`` costs a property call).
    unique: dict[tuple[str, str, str], Record] = {}
    for record in batch.records:
        unique.setdefault((record.model, record.request_id, record.variant), record)
    by_model: dict[str, list[Record]] = {}
    for record in unique.values():
        by_model.setdefault(record.model, []).append(record)

    stored: Counter[tuple[str, str]] = Counter()
    seen_versions: set[tuple[int, str]] = set()
    with state.sessions.begin() as session:
        models = ensure_models(session, by_model, now)
        for position, (name, records) in enumerate(by_model.items(), start=1):
            model = models[name]
            versions = {(model.id, r.version) for r in records}
            if not versions <= state.known_versions:
                ensure_versions(session, model, records, now)
                seen_versions |= versions
            last = position == len(by_model)
            new_rows = insert_new(session, model.id, records, now, last=last)
            stored.update((name, r.variant) for r in new_rows)
            if new_rows:
                for hook in state.ingest_hooks:
                    hook(session, model, new_rows)

    state.known_versions |= seen_versions  # only once committed
    # Each record of the batch was stored once or is a duplicate (of a stored row, or of an
    # earlier record in the same batch).
    received = Counter((r.model, str(r.variant)) for r in batch.records)
    for (model_name, variant), count in received.items():
        new = stored[(model_name, variant)]
        if new:
            state.metrics.records.labels(model_name, variant, "stored").inc(new)
        if count > new:
            state.metrics.records.labels(model_name, variant, "duplicate").inc(count - new)
    state.metrics.batch_seconds.observe(time.perf_counter() - start)
    total_stored = sum(stored.values())
    return IngestResult(
        batch_id=batch.batch_id,
        received=len(batch.records),
        stored=total_stored,
        duplicates=len(batch.records) - total_stored,
    )
