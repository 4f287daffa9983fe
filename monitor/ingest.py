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
    unique: dict[tuple[str, str, str], Record] = {}
    for record in batch.records:
        unique.setdefault((record.model, record.request_id, record.variant.value), record)
    by_model: dict[str, list[Record]] = {}
    for record in unique.values():
        by_model.setdefault(record.model, []).append(record)

    stored_keys: set[tuple[str, str, str]] = set()
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
            stored_keys.update((name, r.request_id, r.variant) for r in new_rows)
            if new_rows:
                for hook in state.ingest_hooks:
                    hook(session, model, new_rows)

    state.known_versions |= seen_versions  # only once committed
    counts: Counter[tuple[str, str, str]] = Counter()
    for record in batch.records:
        key = (record.model, record.request_id, record.variant.value)
        outcome = "stored" if key in stored_keys else "duplicate"
        stored_keys.discard(key)  # a repeat inside the batch is a duplicate
        counts[(record.model, record.variant.value, outcome)] += 1
    for labels, count in counts.items():
        state.metrics.records.labels(*labels).inc(count)
    state.metrics.batch_seconds.observe(time.perf_counter() - start)
    stored = sum(n for (_m, _v, outcome), n in counts.items() if outcome == "stored")
    return IngestResult(
        batch_id=batch.batch_id,
        received=len(batch.records),
        stored=stored,
        duplicates=len(batch.records) - stored,
    )
