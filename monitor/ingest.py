"""Record ingest: one batch, one transaction, idempotent on ``(model, request_id, variant)``.

Nothing is acknowledged before the commit returns; a failed commit leaves no row behind because
every insert of the batch, and every ingest hook, runs in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

from driftloop.contract import Batch, Record
from driftloop.monitor.autoregister import ensure_models, ensure_versions
from driftloop.monitor.cardinality import check_batch_versions
from driftloop.monitor.conflicts import MAX_REPORTED, find_conflicts, same_prediction
from driftloop.monitor.writer import insert_new
from driftloop.web.state import MonitorState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What one batch did: rows stored and rows already present."""

    batch_id: str
    received: int
    stored: int
    duplicates: int
    conflicts: int = 0
    conflicting_request_ids: tuple[str, ...] = ()


def ingest_batch(state: MonitorState, batch: Batch) -> IngestResult:
    """Store ``batch``; return counts. Raises SQLAlchemy errors when the database fails."""
    start = time.perf_counter()
    now = state.clock.now()
    limits = state.settings.ingest
    check_batch_versions(batch.records, limits)
    # Variant is a StrEnum: a member is its own value (``.value`` costs a property call).
    unique: dict[tuple[str, str, str], Record] = {}
    conflicts: list[Record] = []
    for record in batch.records:
        first = unique.setdefault((record.model, record.request_id, record.variant), record)
        if first is not record and not same_prediction(first, record):
            conflicts.append(record)  # the same key twice in one batch, different inputs
    by_model: dict[str, list[Record]] = {}
    for record in unique.values():
        by_model.setdefault(record.model, []).append(record)

    stored: Counter[tuple[str, str]] = Counter()
    seen_versions: set[tuple[int, str]] = set()
    with state.sessions.begin() as session:
        models = ensure_models(session, by_model, now, limits)
        for position, (name, records) in enumerate(by_model.items(), start=1):
            model = models[name]
            versions = {(model.id, r.version) for r in records}
            if not versions <= state.known_versions:
                ensure_versions(session, model, records, now, limits)
                seen_versions |= versions
            last = position == len(by_model)
            new_rows = insert_new(session, model.id, records, now, last=last)
            stored.update((name, r.variant) for r in new_rows)
            if len(new_rows) < len(records):
                new_keys = {(r.request_id, r.variant) for r in new_rows}
                kept = [r for r in records if (r.request_id, r.variant.value) not in new_keys]
                conflicts.extend(find_conflicts(session, model.id, kept))
            if new_rows:
                for hook in state.ingest_hooks:
                    hook(session, model, new_rows)

    state.known_versions |= seen_versions  # only once committed
    # Each record of the batch was stored once or is a duplicate (of a stored row, or of an
    # earlier record in the same batch).
    received = Counter((r.model, str(r.variant)) for r in batch.records)
    conflicted = Counter((r.model, str(r.variant)) for r in conflicts)
    for (model_name, variant), count in received.items():
        new = stored[(model_name, variant)]
        clash = conflicted[(model_name, variant)]
        if new:
            state.metrics.records.labels(model_name, variant, "stored").inc(new)
        if count > new + clash:
            state.metrics.records.labels(model_name, variant, "duplicate").inc(count - new - clash)
        if clash:
            state.metrics.records.labels(model_name, variant, "conflict").inc(clash)
    if conflicts:
        log.warning(
            "%d record(s) of batch %s reuse a request id with different inputs (first: %r of "
            "model %r); they were not stored: give every prediction its own X-Request-ID",
            len(conflicts),
            batch.batch_id,
            conflicts[0].request_id,
            conflicts[0].model,
        )
    state.metrics.batch_seconds.observe(time.perf_counter() - start)
    total_stored = sum(stored.values())
    return IngestResult(
        batch_id=batch.batch_id,
        received=len(batch.records),
        stored=total_stored,
        duplicates=len(batch.records) - total_stored,
        conflicts=len(conflicts),
        conflicting_request_ids=tuple(
            dict.fromkeys(r.request_id for r in conflicts[:MAX_REPORTED])
        ),
    )
