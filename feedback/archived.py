"""Labeled rows from the archive: records pruned from the database, read back for a snapshot.

The archive (:mod:`driftloop.store.archive`) holds each pruned day of a model's records with the
labels that joined them. For a snapshot over ``[since, until)`` this module reads the archived
days in that range (every part checked against its manifest; a partition without a manifest is
not archived yet and is skipped), keeps the records no longer in the database (the database's
copy wins: a day archived but not yet deleted is read from the database only), and joins each
record to its label: the newest by ``updated_at`` among the archived labels and the labels still
in the database (a late label for a pruned record waits there, pending). The result has the
columns of :func:`driftloop.feedback.join.labeled_rows`, built by the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote, unquote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import ModelSchema
from driftloop.feedback.join import Fetched, _Query
from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.archive import Archive
from driftloop.store.archive_format import SCHEMAS
from driftloop.store.dialect import dialect_of
from driftloop.store.feedback import PENDING_MODEL

__all__ = ["ArchivedRows", "archived_labeled_rows"]

LOOKUP_ROWS = 5000
"""Request ids looked up in the database per query."""


@dataclass
class ArchivedRows:
    """Labeled rows read from the archive, and what was read."""

    frame: pd.DataFrame
    partitions: list[str] = field(default_factory=list)
    """``date`` of each archived day read."""
    records: int = 0
    """Archived records in the range no longer in the database (labeled or not)."""
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """Those records per ``(version, variant)``."""


def _days(
    archive: Archive, model: str, since: datetime | None, until: datetime | None
) -> list[date]:
    fs, root = archive.filesystem()
    folder = f"{root}/records/model={quote(model, safe='')}"
    if not fs.exists(folder):
        return []
    days = []
    for path in fs.ls(folder, detail=False):
        name = unquote(str(path).rstrip("/").rsplit("/", 1)[-1])
        if not name.startswith("date="):
            continue
        day = date.fromisoformat(name.removeprefix("date="))
        start = datetime.combine(day, time(), UTC)
        if (since is None or start + timedelta(days=1) > since) and (
            until is None or start < until
        ):
            days.append(day)
    return sorted(days)


def _in_database(
    session: Session, model: Model, since: datetime, until: datetime
) -> set[tuple[str, str]]:
    statement = select(RecordRow.request_id, RecordRow.variant).where(
        RecordRow.model_id == model.id, RecordRow.ts >= since, RecordRow.ts < until
    )
    return {(r, v) for r, v in session.execute(statement)}


def _database_labels(session: Session, model: Model, request_ids: list[str]) -> pa.Table:
    text = dialect_of(session).json_text(LabelRow.label)
    rows: list[Any] = []
    for start in range(0, len(request_ids), LOOKUP_ROWS):
        chunk = request_ids[start : start + LOOKUP_ROWS]
        rows += session.execute(
            select(
                LabelRow.model_id,
                LabelRow.request_id,
                text,
                LabelRow.label_ts,
                LabelRow.updated_at,
            ).where(
                LabelRow.model_id.in_([model.id, PENDING_MODEL]), LabelRow.request_id.in_(chunk)
            )
        ).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    label = [v if v is None or isinstance(v, str) else json.dumps(v) for v in columns[2]]
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "model_id": pa.array(columns[0], pa.int64()),
            "request_id": pa.array(columns[1], pa.string()),
            "label": pa.array(label, pa.string()),
            "label_ts": pa.array(columns[3], ts),
            "updated_at": pa.array(columns[4], ts),
        }
    )


def archived_labeled_rows(
    session: Session,
    model: Model,
    url: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    variant: str | None = None,
) -> ArchivedRows:
    """Labeled rows of ``model`` in ``[since, until)`` that are in the archive at ``url`` and no
    longer in the database; raises :class:`~driftloop.store.archive_format.ArchiveError` when a
    partition's files do not match its manifest."""
    archive = Archive(url)
    records: list[pa.Table] = []
    labels: list[pa.Table] = []
    read: list[str] = []
    for day in _days(archive, model.name, since, until):
        manifest = archive.read_manifest("records", model.name, day)
        if manifest is None:
            continue  # written, never committed: not archived
        table = archive.verify(manifest)
        start = datetime.combine(day, time(), UTC)
        kept = _in_database(session, model, start, start + timedelta(days=1))
        if kept:
            gone = [
                (r, v) not in kept
                for r, v in zip(
                    table.column("request_id").to_pylist(),
                    table.column("variant").to_pylist(),
                    strict=True,
                )
            ]
            table = table.filter(pa.array(gone, pa.bool_()))
        ts = table.column("ts")
        mask = pc.and_(
            pc.greater_equal(ts, pa.scalar(since, ts.type)) if since else pc.is_valid(ts),
            pc.less(ts, pa.scalar(until, ts.type)) if until else pc.is_valid(ts),
        )
        if variant is not None:
            mask = pc.and_(mask, pc.equal(table.column("variant"), variant))
        records.append(table.filter(mask))
        label_manifest = archive.read_manifest("labels", model.name, day)
        if label_manifest is not None:
            labels.append(archive.verify(label_manifest))
        read.append(day.isoformat())
    if not records:
        return ArchivedRows(pd.DataFrame(), read)
    found = pa.concat_tables(records)
    counts: dict[tuple[str, str], int] = {}
    for v, var in zip(
        found.column("version").to_pylist(), found.column("variant").to_pylist(), strict=True
    ):
        counts[(v, var)] = counts.get((v, var), 0) + 1
    request_ids = sorted(set(found.column("request_id").to_pylist()))
    columns = ["model_id", "request_id", "label", "label_ts", "updated_at"]
    candidates = [t.select(columns) for t in labels]
    candidates.append(_database_labels(session, model, request_ids))
    label_frame = pa.concat_tables(candidates).to_pandas()
    label_frame = (
        label_frame.sort_values("updated_at", kind="stable")
        .drop_duplicates("request_id", keep="last")
        .set_index("request_id")
    )
    frame = found.to_pandas()
    frame = frame[frame["request_id"].isin(label_frame.index)].reset_index(drop=True)
    if frame.empty:
        return ArchivedRows(pd.DataFrame(), read, found.num_rows, counts)
    matched = label_frame.loc[frame["request_id"]]
    joined = Fetched(
        {
            "request_id": frame["request_id"].tolist(),
            "version": frame["version"].tolist(),
            "variant": frame["variant"].tolist(),
            "ts": pa.chunked_array([pa.array(frame["ts"], SCHEMAS["records"].field("ts").type)]),
            "received_at": pa.chunked_array(
                [pa.array(frame["received_at"], SCHEMAS["records"].field("ts").type)]
            ),
            "label": [json.loads(v) for v in matched["label"]],
            "label:kind": [None] * len(frame),
            "label_ts": pa.chunked_array(
                [pa.array(matched["label_ts"], SCHEMAS["records"].field("ts").type)]
            ),
            "_updated": pa.chunked_array(
                [pa.array(matched["updated_at"], SCHEMAS["records"].field("ts").type)]
            ),
            "_pending": [0] * len(frame),
            "latency_ms": frame["latency_ms"].tolist(),
            "status": frame["status"].tolist(),
            "inputs": frame["inputs"].tolist(),
            "outputs": frame["outputs"].tolist(),
        }
    )
    schema = ModelSchema.model_validate(model.schema)
    query = _Query(schema, dialect_of(session))
    return ArchivedRows(query.frame(joined), read, found.num_rows, counts)
