"""The label join: records and labels matched by request id at query time.

Why at query time rather than in an ingest hook: labels are stored under ``(model_id,
request_id)`` with a unique index, records under ``(model_id, request_id, variant)``, so one hash
join (PostgreSQL) or one index probe per record (SQLite) matches them whatever arrived first; the
record ingest path (the 20,000 records/s one) does no extra work, and a label that arrived before
its record (kept *pending*, ``model_id = 0``) is matched by the same query. Shadow and champion
records share a request id, so one label joins both. The database also extracts the features,
prediction, scores and label from JSON (see ``driftloop.feedback.sql``).

On PostgreSQL the joined rows are read with ADBC's PostgreSQL driver, which streams them with
``COPY ... (FORMAT binary)`` straight into Arrow columns: timestamps, numbers and strings arrive
typed, with no text rendering on the server, no Python object per row and no parsing on the
client. That and ``json`` documents are what keep a million-row join within seconds
(docs/benchmarks.md). It reads on its own connection, so it sees what is committed, as any other
connection would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    Float,
    Integer,
    Select,
    and_,
    case,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftloop.clock import utc
from driftloop.contract import FeatureKind, ModelSchema
from driftloop.feedback.documents import Documents, parse
from driftloop.feedback.sql import Extractor, decode
from driftloop.scores import is_score_column, score_column
from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.dialect import Dialect, dialect_of
from driftloop.store.feedback import PENDING_MODEL

FETCH_ROWS = 50_000
JOIN_BATCH_BYTES = 16 << 20
"""About how much of the result the driver decodes before handing over a batch."""

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
    """The frame column of input feature ``name`` (prefixed when it clashes with a base column
    or a score column)."""
    clashes = name in BASE_COLUMNS or name == "_updated" or is_score_column(name)
    return f"input.{name}" if clashes else name


class _Query:
    """The joined select for one model and dialect, and how to turn its rows into a frame."""

    def __init__(self, schema: ModelSchema, dialect: Dialect) -> None:
        self.schema = schema
        self.dialect = dialect
        self.x = Extractor(dialect)
        self.columns: dict[str, ColumnElement[Any]] = {}
        x = self.x
        self._add("request_id", RecordRow.request_id)
        self._add("version", RecordRow.version)
        self._add("variant", RecordRow.variant)
        self._add("ts", x.timestamp(RecordRow.ts))
        self._add("received_at", x.timestamp(RecordRow.received_at))
        self._add("label_ts", x.timestamp(LabelRow.label_ts))
        self._add("_updated", x.timestamp(LabelRow.updated_at))
        self._add("_pending", case((LabelRow.model_id == PENDING_MODEL, 1), else_=0))
        self._add("latency_ms", type_coerce(RecordRow.latency_ms, Float))
        self._add("status", type_coerce(RecordRow.status, Integer))
        self._scalar("label", LabelRow.label)
        # Documents travel as text and are parsed by Arrow (see driftloop.feedback.documents).
        self._add("inputs", x.document(RecordRow.inputs))
        self._add("outputs", x.document(RecordRow.outputs))

    def _add(self, name: str, expression: Any) -> None:
        self.columns[name] = expression

    def _scalar(self, name: str, column: Any, *keys: str) -> None:
        value, kind = self.x.scalar(column, *keys)
        self._add(name, value)
        self._add(f"{name}:kind", kind)

    def select(
        self,
        model: Model,
        since: datetime | None,
        until: datetime | None,
        *,
        unlabeled: bool = False,
    ) -> Select[Any]:
        columns = select(*(c.label(f"c{i}") for i, c in enumerate(self.columns.values())))
        if unlabeled:
            # Every record, with its label where there is one (null label columns where not).
            statement = (
                columns.select_from(RecordRow)
                .outerjoin(
                    LabelRow,
                    and_(
                        LabelRow.request_id == RecordRow.request_id,
                        LabelRow.model_id.in_([model.id, PENDING_MODEL]),
                    ),
                )
                .where(RecordRow.model_id == model.id)
            )
        else:
            statement = (
                columns.select_from(RecordRow)
                .join(LabelRow, LabelRow.request_id == RecordRow.request_id)
                .where(
                    RecordRow.model_id == model.id,
                    LabelRow.model_id.in_([model.id, PENDING_MODEL]),
                )
            )
        # Bound as aware UTC datetimes: ADBC binds parameters without SQLAlchemy's processors.
        if since is not None:
            statement = statement.where(RecordRow.ts >= utc(since))
        if until is not None:
            statement = statement.where(RecordRow.ts < utc(until))
        return statement

    def frame(self, raw: Fetched) -> pd.DataFrame:
        """The frame of :func:`labeled_rows` from fetched columns."""
        x, prediction, columns = self.x, self.schema.prediction, raw.columns
        inputs = Documents(columns["inputs"], raw.parsed.get("inputs"))
        outputs = Documents(columns["outputs"], raw.parsed.get("outputs"))
        data: dict[str, Any] = {
            "request_id": _objects(columns["request_id"], repeats=False),
            "version": _objects(columns["version"]),
            "variant": _objects(columns["variant"]),
            "ts": x.timestamps(columns["ts"]),
            "received_at": x.timestamps(columns["received_at"]),
            "label": decode(_objects(columns["label"]), _objects(columns["label:kind"])),
            "label_ts": x.timestamps(columns["label_ts"]),
            "prediction": outputs.values(prediction.field),
            "latency_ms": pd.Series(_numbers(columns["latency_ms"], "float64")),
            "status": pd.Series(_numbers(columns["status"], "int64")),
        }
        numerical = {f.name for f in self.schema.features if f.kind is FeatureKind.numerical}
        for name in [f.name for f in self.schema.features] or inputs.keys():
            data[feature_column(name)] = (
                inputs.numbers(name) if name in numerical else inputs.values(name)
            )
        scored = outputs.score_matrix(prediction.scores_field, prediction.classes or [])
        if scored is not None:
            names, matrix = scored
            for i, cls in enumerate(names):
                data[score_column(cls)] = matrix[:, i]
        data["_updated"] = x.timestamps(columns["_updated"])
        # copy=False also leaves the columns in blocks of their own: consolidating a million
        # rows of objects into one block would copy them all for nothing.
        frame = pd.DataFrame(data, copy=False)
        if _doubly_labeled(columns["request_id"], columns["_pending"]):
            # A pending label and a model's own label for one request id (a race between two
            # uploads) join one record twice: the label written last is the truth.
            frame = frame.sort_values("_updated").drop_duplicates(
                ["request_id", "variant"], keep="last"
            )
        del frame["_updated"]
        return frame


def _doubly_labeled(request_ids: Any, pending: Any) -> bool:
    """Whether a request id was joined through both a pending label and a model's own label
    (labels are unique per model and request id, so this is the one way to join a record twice).
    """
    is_pending = _numbers(pending, "int64").astype(bool)
    if is_pending.all() or not is_pending.any():
        return False
    if isinstance(request_ids, pa.ChunkedArray):
        mask = pa.array(is_pending)
        own = request_ids.filter(pc.invert(mask)).combine_chunks()
        return bool(pc.any(pc.is_in(request_ids.filter(mask), value_set=own)).as_py())
    ids = np.asarray(request_ids, dtype=object)
    return not set(ids[is_pending]).isdisjoint(ids[~is_pending])


@dataclass
class Fetched:
    """Joined rows as columns (name -> Arrow array or sequence), and documents already parsed
    batch by batch (name -> one table per batch)."""

    columns: dict[str, Any]
    parsed: dict[str, list[pa.Table | None]] = field(default_factory=dict)


def _objects(values: Any, *, repeats: bool = True) -> pd.Series:
    if isinstance(values, pa.ChunkedArray):
        # With repeats (versions, variants, labels), one Python object per distinct value.
        return values.to_pandas(deduplicate_objects=repeats)
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
) -> Fetched:
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
    return Fetched(dict(zip(names, columns, strict=True)))


def fetch_arrow(
    session: Session,
    statement: Select[Any],
    names: list[str],
    progress: Callable[[int, int], None] | None,
    documents: tuple[str, ...] = ("inputs", "outputs"),
) -> Fetched:
    """Columns of ``statement`` as Arrow arrays, read by ADBC's PostgreSQL driver (PostgreSQL).

    The driver runs the query as a binary ``COPY`` and decodes it into Arrow in C: a million
    joined rows cost the monitor about a CPU-second, where row-by-row fetching cost eleven and
    CSV through psycopg three. A second thread reads the next batch while this one parses the
    ``documents`` columns of the last, so that the parsing overlaps the server's work. The
    driver needs a connection of its own, opened from the session's URL, tuned for one large
    read (``driftloop.store.dialect.postgresql.ANALYTIC_SETTINGS``).
    """
    bind = session.get_bind()
    labels = {name: f"c{i}" for i, name in enumerate(names)}
    parsed: dict[str, list[pa.Table | None]] = {name: [] for name in documents}
    batches, rows = [], 0
    with dialect_of(bind).arrow_batches(bind, statement, batch_bytes=JOIN_BATCH_BYTES) as reader:
        for batch in _read_ahead(reader):
            batches.append(batch)
            for name in documents:
                parsed[name].append(parse(batch.column(labels[name])))
            rows += batch.num_rows
            if progress is not None:
                progress(rows, -1)
        table = pa.Table.from_batches(batches, reader.schema)
    return Fetched({name: table.column(label) for name, label in labels.items()}, parsed)


def _read_ahead(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches, the next one read by another thread while the caller works on
    this one (the driver's reads release the GIL)."""
    with ThreadPoolExecutor(1, thread_name_prefix="driftloop-join") as pool:
        pending = pool.submit(reader.read_next_batch)
        try:
            while True:
                try:
                    batch = pending.result()
                except StopIteration:
                    return
                pending = pool.submit(reader.read_next_batch)
                yield batch
        finally:
            pending.cancel()
            wait([pending])


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
    a base column is prefixed ``input.``), then ``score:<class>`` per class (floats, NaN in a row
    without a full set; :func:`driftloop.scores.score_matrix` reads them) when the model logs
    scores. Rows come in no set order (sorting a million rows costs more than the join; sort
    when it matters, as snapshots do).
    ``progress(done, total)`` is called as rows are fetched (it costs one counting query more).
    """
    schema = ModelSchema.model_validate(model.schema)
    query = _Query(schema, dialect_of(session))
    statement = query.select(model, since, until)
    if variant is not None:
        statement = statement.where(RecordRow.variant == variant)
    total = -1
    if progress is not None:
        total = int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)
        progress(0, total)
    if query.dialect.reads_arrow:
        raw = fetch_arrow(session, statement, list(query.columns), progress)
    else:
        raw = fetch_rows(session, statement, list(query.columns), progress)
    if progress is not None:
        progress(total, total)
    return query.frame(raw)


def window_rows(
    session: Session,
    model: Model,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    variant: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """One row per record of ``model`` in ``[since, until)``, labeled or not: the columns of
    :func:`labeled_rows` (``label`` and ``label_ts`` missing where no label arrived yet), so
    performance can be estimated on the whole window before the labels come.

    With ``limit``, only the newest ``limit`` records by prediction time (the cost bound of a
    busy model's window)."""
    schema = ModelSchema.model_validate(model.schema)
    query = _Query(schema, dialect_of(session))
    statement = query.select(model, since, until, unlabeled=True)
    if variant is not None:
        statement = statement.where(RecordRow.variant == variant)
    if limit is not None:
        statement = statement.order_by(RecordRow.ts.desc()).limit(limit)
    if query.dialect.reads_arrow:
        raw = fetch_arrow(session, statement, list(query.columns), None)
    else:
        raw = fetch_rows(session, statement, list(query.columns), None)
    return query.frame(raw)


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
