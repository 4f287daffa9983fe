"""The label join: records and labels matched by request id at query time.

Why at query time rather than in an ingest hook: labels are stored under ``(model_id,
request_id)`` with a unique index, records under ``(model_id, request_id, variant)``, so one hash
join (PostgreSQL) or one index probe per record (SQLite) matches them whatever arrived first; the
record ingest path (the 20,000 records/s one) does no extra work, and a label that arrived before
its record (kept *pending*, ``model_id = 0``) is matched by the same query. Shadow and champion
records share a request id, so one label joins both. The database also extracts the features,
prediction, scores and label from JSON (see ``driftloop.feedback.sql``), which is what keeps a
million-row join within seconds.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    Text,
    case,
    cast,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.clock import utc
from driftloop.contract import FeatureKind, ModelSchema
from driftloop.feedback.documents import Documents
from driftloop.feedback.sql import Extractor, decode
from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.feedback import PENDING_MODEL

FETCH_ROWS = 50_000
JOIN_WORK_MEM = "256MB"

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


def feature_column(name: str) -> str:
    """The frame column of input feature ``name`` (prefixed when it clashes with a base column)."""
    return f"input.{name}" if name in BASE_COLUMNS or name in ("scores", "_updated") else name


class _Query:
    """The joined select for one model and dialect, and how to turn its rows into a frame."""

    def __init__(self, schema: ModelSchema, dialect: str) -> None:
        self.schema = schema
        self.x = Extractor(dialect)
        self.sqlite = dialect != "postgresql"
        self.columns: dict[str, ColumnElement[Any]] = {}
        self.kinds: dict[str, str] = {}
        x = self.x
        self._add("request_id", RecordRow.request_id)
        self._add("version", RecordRow.version)
        self._add("variant", RecordRow.variant)
        self._add("ts", x.epoch_us(RecordRow.ts), "int")
        self._add("received_at", x.epoch_us(RecordRow.received_at), "int")
        self._add("label_ts", x.epoch_us(LabelRow.label_ts), "int")
        self._add("_updated", x.epoch_us(LabelRow.updated_at), "int")
        self._add("_pending", case((LabelRow.model_id == PENDING_MODEL, 1), else_=0), "int")
        self._add("latency_ms", type_coerce(RecordRow.latency_ms, Float), "float")
        self._add("status", type_coerce(RecordRow.status, Integer), "int")
        self._scalar("label", LabelRow.label)
        # Documents travel as text and are parsed by Arrow (see driftloop.feedback.documents).
        self._add(
            "inputs",
            cast(RecordRow.inputs, Text)
            if not self.sqlite
            else type_coerce(RecordRow.inputs, String),
        )
        self._add(
            "outputs",
            cast(RecordRow.outputs, Text)
            if not self.sqlite
            else type_coerce(RecordRow.outputs, String),
        )

    def _add(self, name: str, expression: Any, kind: str = "string") -> None:
        self.columns[name] = expression
        self.kinds[name] = kind

    def arrow_types(self) -> dict[str, pa.DataType]:
        """The Arrow type of each column, for parsing COPY output."""
        table = {"string": pa.string(), "float": pa.float64(), "int": pa.int64()}
        return {name: table[kind] for name, kind in self.kinds.items()}

    def _scalar(self, name: str, column: Any, *keys: str) -> None:
        value, kind = self.x.scalar(column, *keys)
        self._add(name, value)
        self._add(f"{name}:kind", kind)

    def select(self, model: Model, since: datetime | None, until: datetime | None) -> Select[Any]:
        statement = (
            select(*(c.label(f"c{i}") for i, c in enumerate(self.columns.values())))
            .select_from(RecordRow)
            .join(LabelRow, LabelRow.request_id == RecordRow.request_id)
            .where(
                RecordRow.model_id == model.id,
                LabelRow.model_id.in_([model.id, PENDING_MODEL]),
            )
        )
        # Bound as aware UTC datetimes: COPY binds parameters without SQLAlchemy's processors.
        if since is not None:
            statement = statement.where(RecordRow.ts >= utc(since))
        if until is not None:
            statement = statement.where(RecordRow.ts < utc(until))
        return statement

    def frame(self, raw: dict[str, Any]) -> pd.DataFrame:
        """The frame of :func:`labeled_rows` from fetched columns (name -> sequence)."""
        x, prediction = self.x, self.schema.prediction
        inputs, outputs = Documents(raw["inputs"]), Documents(raw["outputs"])
        data: dict[str, Any] = {
            "request_id": _objects(raw["request_id"]),
            "version": _objects(raw["version"]),
            "variant": _objects(raw["variant"]),
            "ts": x.timestamps(raw["ts"]),
            "received_at": x.timestamps(raw["received_at"]),
            "label": decode(_objects(raw["label"]).tolist(), _objects(raw["label:kind"]).tolist()),
            "label_ts": x.timestamps(raw["label_ts"]),
            "prediction": outputs.values(prediction.field),
            "latency_ms": pd.Series(_numbers(raw["latency_ms"], "float64")),
            "status": pd.Series(_numbers(raw["status"], "int64")),
        }
        numerical = {f.name for f in self.schema.features if f.kind is FeatureKind.numerical}
        for name in [f.name for f in self.schema.features] or inputs.keys():
            data[feature_column(name)] = (
                inputs.numbers(name) if name in numerical else inputs.values(name)
            )
        classes = [str(c) for c in prediction.classes or []]
        scores = outputs.scores(prediction.scores_field, classes)
        if scores is not None:
            data["scores"] = scores
        data["_updated"] = _objects(raw["_updated"])
        frame = pd.DataFrame(data)
        frame.attrs["pending"] = bool(_numbers(raw["_pending"], "int64").any())
        return frame


def _objects(values: Any) -> pd.Series:
    if isinstance(values, pa.ChunkedArray):
        values = values.to_numpy(zero_copy_only=False)
    return pd.Series(values, dtype=object)


def _numbers(values: Any, dtype: str) -> np.ndarray[Any, Any]:
    if isinstance(values, pa.ChunkedArray):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=dtype)


def fetch_rows(
    session: Session,
    statement: Select[Any],
    names: list[str],
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Columns of ``statement`` read straight from the DB-API cursor (SQLite): no row objects."""
    result = session.connection().execute(statement)
    cursor = result.cursor
    rows: list[Any] = []
    try:
        while batch := cursor.fetchmany(FETCH_ROWS):
            rows.extend(batch)
            if progress is not None:
                progress(len(rows), -1)
    finally:
        result.close()
    columns = zip(*rows, strict=True) if rows else [()] * len(names)
    return dict(zip(names, columns, strict=True))


def fetch_copy(
    session: Session,
    statement: Select[Any],
    names: list[str],
    types: dict[str, pa.DataType],
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    """Columns of ``statement`` through ``COPY ... TO STDOUT`` as CSV, parsed by Arrow.

    COPY streams the result in large blocks and Arrow's C++ reader parses them; row-by-row
    fetching and Python objects per value are what made a million-row join slow.
    """
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    sink = io.BytesIO()
    lines = 0
    try:
        # One hash of a million labels fits in memory: no spilling the join to temporary files.
        cursor.execute(f"SET LOCAL work_mem = '{JOIN_WORK_MEM}'")
        with cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy:
            for block in copy:
                sink.write(block)
                if progress is not None:
                    lines += bytes(block).count(b"\n")
                    progress(lines, -1)
    finally:
        cursor.close()
    labels = [f"c{i}" for i in range(len(names))]
    if not sink.getbuffer().nbytes:
        return {name: [] for name in names}
    table = pa_csv.read_csv(
        io.BytesIO(sink.getvalue()),
        read_options=pa_csv.ReadOptions(column_names=labels),
        convert_options=pa_csv.ConvertOptions(
            column_types={label: types[name] for label, name in zip(labels, names, strict=True)},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    return {name: table.column(label) for label, name in zip(labels, names, strict=True)}


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
    when the model logs scores. Rows come in no set order (sorting a million rows costs more
    than the join; sort when it matters, as snapshots do).
    ``progress(done, total)`` is called as rows are fetched (it costs one counting query more).
    """
    schema = ModelSchema.model_validate(model.schema)
    query = _Query(schema, session.get_bind().dialect.name)
    statement = query.select(model, since, until)
    if variant is not None:
        statement = statement.where(RecordRow.variant == variant)
    total = -1
    if progress is not None:
        total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        progress(0, total)
    if query.x.postgres:
        raw = fetch_copy(session, statement, list(query.columns), query.arrow_types(), progress)
    else:
        raw = fetch_rows(session, statement, list(query.columns), progress)
    if progress is not None:
        progress(total, total)
    frame = query.frame(raw)
    if frame.attrs.pop("pending") and frame.duplicated(["request_id", "variant"]).any():
        # A pending label and a model's own label for one request id (a race between two uploads):
        # the one written last is the truth. Only possible when a pending label was joined.
        frame = frame.sort_values("_updated").drop_duplicates(
            ["request_id", "variant"], keep="last"
        )
    return frame.drop(columns="_updated")


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
