"""The bulk write path of ingest: stage a batch, then insert what is new in one statement.

The dialect stages the rows (PostgreSQL ``COPY``; SQLite ``executemany``) and moves them into
``records`` with ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``, which both deduplicates
against rows already stored (concurrency-safe: the unique constraint decides) and tells exactly
which rows are new (see ``driftloop.store.dialect.staging``). This module turns those into the
records ingest hooks receive.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from driftloop.contract import Record
from driftloop.store.dialect import dialect_of
from driftloop.store.records import StoredRecord


def insert_new(
    session: Session,
    model_id: int,
    records: list[Record],
    received_at: datetime,
    *,
    last: bool = False,
) -> list[StoredRecord]:
    """Insert ``records`` of one model (unique on request id and variant) received at
    ``received_at``; return the ones that were not stored before, with their ids. ``last``:
    no other model of the batch follows in this transaction (PostgreSQL's staging table is then
    emptied by the commit instead of a ``DELETE``)."""
    if not records:
        return []
    inserted = dialect_of(session).insert_records(
        session.connection(), model_id, records, received_at, last=last
    )
    ids = {(request_id, variant): pk for pk, request_id, variant in inserted}
    out = []
    for r in records:
        variant = r.variant.value
        pk = ids.get((r.request_id, variant))
        if pk is not None:
            out.append(
                StoredRecord(
                    pk,
                    model_id,
                    r.version,
                    variant,
                    r.request_id,
                    r.timestamp,
                    r.inputs,
                    r.outputs,
                    r.latency_ms,
                    r.status,
                    received_at,
                )
            )
    return out
