"""A reused request id with different inputs is a conflict: counted and reported, not merged.

Records are idempotent on ``(model, request_id, variant)``: a resend is harmless and counted as a
duplicate. A client that reuses an ``X-Request-ID`` for a different prediction would otherwise
lose the second one silently, and its label would join the wrong row. So a record that is not
stored because its key exists is compared with the stored one (and with an earlier record of the
same batch); different inputs or outputs make it a ``conflict``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import Record
from driftloop.store import RecordRow

__all__ = ["MAX_REPORTED", "find_conflicts", "same_prediction"]

MAX_REPORTED = 20
"""Conflicting request ids listed in one ingest response (all are counted)."""

_CHUNK = 500
_decode = msgspec.json.decode


def _as_document(value: Any) -> Any:
    if isinstance(value, bytes | str):
        try:
            return _decode(value)
        except msgspec.DecodeError:
            return value
    return value


def same_prediction(a: Record, b: Record) -> bool:
    """True when two records sharing a key carry the same inputs and outputs."""
    return a.inputs == b.inputs and a.outputs == b.outputs


def find_conflicts(session: Session, model_id: int, records: list[Record]) -> list[Record]:
    """The ``records`` (not stored: their key exists) whose stored copy differs from them."""
    if not records:
        return []
    by_key = {(r.request_id, r.variant.value): r for r in records}
    out: list[Record] = []
    ids = sorted({r.request_id for r in records})
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(
            select(
                RecordRow.request_id, RecordRow.variant, RecordRow.inputs, RecordRow.outputs
            ).where(RecordRow.model_id == model_id, RecordRow.request_id.in_(chunk))
        )
        for request_id, variant, inputs, outputs in rows:
            record = by_key.get((request_id, variant))
            if record is None:
                continue
            if _as_document(inputs) != record.inputs or _as_document(outputs) != record.outputs:
                out.append(record)
    return out
