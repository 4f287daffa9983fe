"""The label join: records and labels matched by request id at query time.

Why at query time rather than in an ingest hook: labels are stored under ``(model_id,
request_id)`` with a unique index, records under ``(model_id, request_id, variant)``, so one hash
join (PostgreSQL) or one index probe per record (SQLite) matches them whatever arrived first; the
record ingest path (the 20,000 records/s one) does no extra work, and a label that arrived before
its record (kept *pending*, ``model_id = 0``) is matched by the same query. Shadow and champion
records share a request id, so one label joins both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema
from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.feedback import PENDING_MODEL

FETCH_ROWS = 50_000

BASE_COLUMNS = [
    "request_id",
    "version",
    "variant",
    "ts",
    "received_at",
    "label",
    "label_ts",
    "prediction",
    "latency_ms",
    "status",
]
"""Columns every frame of :func:`labeled_rows` has, before the feature columns."""


def _joined(model: Model, since: datetime | None, until: datetime | None) -> Select[Any]:
    statement = (
        select(
            RecordRow.request_id,
            RecordRow.version,
            RecordRow.variant,
            RecordRow.ts,
            RecordRow.received_at,
            LabelRow.label,
            LabelRow.label_ts,
            RecordRow.outputs,
            RecordRow.latency_ms,
            RecordRow.status,
            RecordRow.inputs,
            LabelRow.updated_at,
        )
        .join(LabelRow, LabelRow.request_id == RecordRow.request_id)
        .where(
            RecordRow.model_id == model.id,
            LabelRow.model_id.in_([model.id, PENDING_MODEL]),
        )
    )
    if since is not None:
        statement = statement.where(RecordRow.ts >= since)
    if until is not None:
        statement = statement.where(RecordRow.ts < until)
    return statement


def labeled_rows(
    session: Session,
    model: Model,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    variant: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per labeled record of ``model`` whose prediction time is in ``[since, until)``.

    Columns: :data:`BASE_COLUMNS`, then one per input feature of the schema (a feature named like
    a base column is prefixed ``input.``), then ``scores`` (class -> probability, keys as strings)
    when the model logs scores. Rows are ordered by prediction time, then request id and variant.
    ``progress(done, total)`` is called as rows are fetched (it costs one counting query more).
    """
    statement = _joined(model, since, until)
    if variant is not None:
        statement = statement.where(RecordRow.variant == variant)
    if progress is None:
        rows = list(session.execute(statement))
    else:
        total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        progress(0, total)
        rows = []
        result = session.execute(statement.execution_options(yield_per=FETCH_ROWS))
        for partition in result.partitions():
            rows.extend(partition)
            progress(len(rows), total)
    return to_frame(rows, ModelSchema.model_validate(model.schema))


def feature_column(name: str) -> str:
    """The frame column of input feature ``name`` (prefixed when it clashes with a base column)."""
    return f"input.{name}" if name in BASE_COLUMNS or name in ("scores", "_updated") else name


def to_frame(rows: list[Any], schema: ModelSchema) -> pd.DataFrame:
    """Build the frame of :func:`labeled_rows` from joined rows (in :func:`_joined` order)."""
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * 12
    (rid, version, variant, ts, received, label, label_ts, outputs, latency, status, inputs, upd) = (
        columns
    )
    field = schema.prediction.field
    data: dict[str, Any] = {
        "request_id": pd.array(rid, dtype=object),
        "version": pd.array(version, dtype=object),
        "variant": pd.array(variant, dtype=object),
        "ts": pd.to_datetime(pd.Series(ts, dtype=object), utc=True),
        "received_at": pd.to_datetime(pd.Series(received, dtype=object), utc=True),
        "label": pd.array(label, dtype=object),
        "label_ts": pd.to_datetime(pd.Series(label_ts, dtype=object), utc=True),
        "prediction": [o.get(field) for o in outputs],
        "latency_ms": pd.array(latency, dtype="float64"),
        "status": pd.array(status, dtype="int64"),
    }
    names = [f.name for f in schema.features] or sorted({k for d in inputs[:1000] for k in d})
    for name in names:
        data[feature_column(name)] = [d.get(name) for d in inputs]
    scores_field = schema.prediction.scores_field
    scores = [o.get(scores_field) for o in outputs]
    if any(s is not None for s in scores):
        classes = [str(c) for c in schema.prediction.classes or []]
        data["scores"] = [_as_dict(s, classes) for s in scores]
    frame = pd.DataFrame({k: pd.Series(v) for k, v in data.items()})
    frame["_updated"] = pd.Series(upd, dtype=object)
    for name in names:
        frame[feature_column(name)] = frame[feature_column(name)].infer_objects()
    frame["prediction"] = frame["prediction"].infer_objects()
    if len(frame) and frame.duplicated(["request_id", "variant"]).any():
        # A pending label and a model's own label for one request id (a race between two uploads):
        # the one written last is the truth.
        frame = frame.sort_values("_updated").drop_duplicates(["request_id", "variant"], keep="last")
    frame = frame.drop(columns="_updated")
    frame = frame.sort_values(["ts", "request_id", "variant"], kind="stable", ignore_index=True)
    return frame


def _as_dict(scores: Any, classes: list[str]) -> dict[str, float] | None:
    if isinstance(scores, dict):
        return {str(k): float(v) for k, v in scores.items() if v is not None}
    if isinstance(scores, list) and len(scores) == len(classes):
        return {c: float(v) for c, v in zip(classes, scores, strict=True) if v is not None}
    return None


def label_count(session: Session, model: Model, *, since: datetime | None = None) -> int:
    """Labels joined to records of ``model``; with ``since``, those joined at or after it.

    A label counts from when both it and its record are stored: its last write or its record's
    arrival, whichever is later.
    """
    statement = (
        select(func.count(func.distinct(LabelRow.id)))
        .select_from(RecordRow)
        .join(LabelRow, LabelRow.request_id == RecordRow.request_id)
        .where(
            RecordRow.model_id == model.id,
            LabelRow.model_id.in_([model.id, PENDING_MODEL]),
        )
    )
    if since is not None:
        statement = statement.where(
            or_(LabelRow.updated_at >= since, RecordRow.received_at >= since)
        )
    return int(session.scalar(statement) or 0)


def prediction_counts(
    session: Session, model: Model, *, since: datetime | None, until: datetime | None
) -> dict[tuple[str, str], int]:
    """Records of ``model`` in ``[since, until)`` per ``(version, variant)``."""
    statement = (
        select(RecordRow.version, RecordRow.variant, func.count())
        .where(RecordRow.model_id == model.id)
        .group_by(RecordRow.version, RecordRow.variant)
    )
    if since is not None:
        statement = statement.where(RecordRow.ts >= since)
    if until is not None:
        statement = statement.where(RecordRow.ts < until)
    return {(v, var): int(n) for v, var, n in session.execute(statement)}
