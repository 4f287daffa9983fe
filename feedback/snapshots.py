"""Dataset snapshots for retraining: reference rows plus labeled production rows, as Parquet.

A snapshot is a folder ``<out>/<snapshot_id>/`` holding ``data.parquet`` and ``manifest.json``;
``out`` is a local directory or any fsspec URL (``memory://``, ``file://``, ``s3://`` ...). Rows
are put in a fixed order and written with fixed options, so the same content always gives the
same bytes and the same SHA-256 (for one pyarrow version); the manifest carries what varies
(when, where). Lineage: every production row keeps its ``request_id``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

import driftloop
from driftloop.contract import ModelSchema, PredictionKind
from driftloop.errors import DatasetError
from driftloop.feedback.join import BASE_COLUMNS, feature_column, labeled_rows, prediction_counts
from driftloop.scores import is_score_column
from driftloop.store import Model, SnapshotRow
from driftloop.urls import redact_url

if TYPE_CHECKING:
    from driftloop.feedback.archived import ArchivedRows

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stages ``fetch``, ``build``, ``write``."""

VARIANT_PREFERENCE = {"champion": 0, "challenger": 1, "shadow": 2}


def _production(frame: pd.DataFrame, features: list[str], variant: str | None) -> pd.DataFrame:
    """Labeled rows as training rows: one per request id (the champion's copy first)."""
    if variant is None and len(frame):
        order = frame["variant"].map(VARIANT_PREFERENCE).fillna(9)
        frame = (
            frame.assign(_order=order)
            .sort_values(["request_id", "_order"], kind="stable")
            .drop_duplicates("request_id")
            .drop(columns="_order")
        )
    # A fixed row order: the same content always encodes to the same bytes.
    frame = frame.sort_values(["ts", "request_id", "variant"], kind="stable")
    out = pd.DataFrame(
        {
            "source": "production",
            "request_id": frame["request_id"],
            "version": frame["version"],
            "variant": frame["variant"],
            "ts": frame["ts"],
            "label": frame["label"],
        }
    )
    for name in features:
        column = feature_column(name)
        out[name] = frame.get(column)
    return out.reset_index(drop=True)


def _reference(
    session: Session, model: Model, schema: ModelSchema, features: list[str]
) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    # Imported here: driftloop.monitor's package imports the app, which installs this component.
    from driftloop.store.reference import latest_reference, load_reference

    stored = latest_reference(session, model)
    frame = load_reference(session, model)
    if stored is None or frame is None:
        return None, None
    info: dict[str, Any] = {"sha256": stored.sha256, "rows": stored.rows}
    label = schema.label_column
    if label is None or label not in frame.columns:
        info["skipped"] = "the reference dataset has no label column"
        return None, info
    out = pd.DataFrame(
        {
            "source": "reference",
            "request_id": None,
            "version": None,
            "variant": None,
            "ts": pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]"),
            "label": frame[label],
        }
    )
    for name in features:
        out[name] = frame[name] if name in frame.columns else None
    return out.reset_index(drop=True), info


def _typed(frame: pd.DataFrame, schema: ModelSchema) -> pd.DataFrame:
    """Give every column one Parquet type (mixed object columns become strings)."""
    frame = frame.copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[us, UTC]")
    if schema.prediction.kind is PredictionKind.regression:
        frame["label"] = pd.to_numeric(frame["label"]).astype("float64")
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].infer_objects()
        series = frame[column]
        if series.dtype == object:
            kinds = {type(v) for v in series.dropna()}
            if len(kinds) > 1:
                frame[column] = series.map(lambda v: None if v is None else str(v))
    return frame


def encode(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of ``frame``, the same for the same content."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DatasetError(f"the snapshot has a column of mixed types: {exc}") from exc
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return sink.getvalue()


def create_snapshot(
    session: Session,
    model: Model,
    *,
    out: str,
    since: datetime | None = None,
    until: datetime | None = None,
    variant: str | None = None,
    now: datetime,
    include_reference: bool = True,
    progress: Progress | None = None,
    include_archive: bool = False,
    archive_url: str | None = None,
) -> dict[str, Any]:
    """Write a snapshot of ``model``'s training data under ``out``; return (and store) its manifest.

    Production rows are the labeled records with prediction time in ``[since, until)`` (of one
    ``variant`` if given), one per request id, features and label. Reference rows are added when
    the reference dataset has a label column. Taking the same snapshot to the same ``out`` twice
    in one second returns the first manifest. With ``include_archive``, labeled records of the
    range that were pruned to the archive at ``archive_url`` are added
    (:mod:`driftloop.feedback.archived`; rows still in the database are taken from there).
    """
    schema = ModelSchema.model_validate(model.schema)
    features = [f.name for f in schema.features]

    def fetched(done: int, total: int) -> None:
        if progress is not None:
            progress("fetch", done, total)

    joined = labeled_rows(
        session, model, since=since, until=until, variant=variant, progress=fetched
    )
    archived = None
    if include_archive:
        archived = _archived(session, model, archive_url, since, until, variant)
        if joined.empty:
            joined = archived.frame if len(archived.frame.columns) else joined
        elif len(archived.frame):
            joined = pd.concat([joined, archived.frame], ignore_index=True)
    if not features:
        features = [c for c in joined.columns[len(BASE_COLUMNS) :] if not is_score_column(c)]
    parts = [_production(joined, features, variant)]
    reference_info = None
    if include_reference:
        reference, reference_info = _reference(session, model, schema, features)
        if reference is not None:
            parts.insert(0, reference)
    if progress is not None:
        progress("build", 0, 1)
    frame = _typed(pd.concat(parts, ignore_index=True), schema)
    if frame.empty:
        raise DatasetError(f"model {model.name!r} has no labeled rows to snapshot in this range")
    content = encode(frame)
    sha256 = hashlib.sha256(content).hexdigest()
    # Same content, same destination, same second: the same snapshot (a retried request).
    digest = hashlib.sha256(f"{sha256}\n{out}".encode()).hexdigest()
    snapshot_id = f"{model.name}-{now:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    if progress is not None:
        progress("build", 1, 1)
    known = session.scalar(select(SnapshotRow).where(SnapshotRow.snapshot_id == snapshot_id))
    if known is not None:
        return dict(known.manifest)

    counts = prediction_counts(session, model, since=since, until=until)
    if archived is not None:
        for key, n in archived.counts.items():
            counts[key] = counts.get(key, 0) + n
    predictions = sum(n for (_, var), n in counts.items() if variant in (None, var))
    production = frame[frame["source"] == "production"]
    manifest: dict[str, Any] = {
        "snapshot_id": snapshot_id,
        "model": model.name,
        "created_at": now.isoformat(),
        "format": "parquet",
        "rows": len(frame),
        "sources": {
            "reference": int((frame["source"] == "reference").sum()),
            "production": len(production),
        },
        "columns": list(frame.columns),
        "features": features,
        "label_column": "label",
        "time_range": {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "first": production["ts"].min().isoformat() if len(production) else None,
            "last": production["ts"].max().isoformat() if len(production) else None,
        },
        "filters": {
            "variant": variant,
            "include_reference": include_reference,
            "include_archive": include_archive,
        },
        "model_versions": sorted(joined["version"].unique().tolist()),
        "variants": sorted(joined["variant"].unique().tolist()),
        "label_coverage": {
            "labeled": len(joined),
            "predictions": predictions,
            "ratio": len(joined) / predictions if predictions else None,
        },
        "sha256": sha256,
        "reference": reference_info,
        "archive": None
        if archived is None
        else {
            "url": redact_url(archive_url or ""),
            "days": archived.partitions,
            "records": archived.records,
            "labeled": len(archived.frame),
        },
        "lineage": {"request_id_column": "request_id", "source_column": "source"},
        "driftloop_version": driftloop.__version__,
    }
    manifest["uri"], manifest["manifest_uri"] = _write(
        out, snapshot_id, content, manifest, progress
    )
    session.add(
        SnapshotRow(
            snapshot_id=snapshot_id,
            model_id=model.id,
            uri=manifest["uri"],
            rows=len(frame),
            sha256=sha256,
            manifest=manifest,
            created_at=now,
        )
    )
    session.flush()
    return manifest


def _archived(
    session: Session,
    model: Model,
    url: str | None,
    since: datetime | None,
    until: datetime | None,
    variant: str | None,
) -> ArchivedRows:
    from driftloop.feedback.archived import archived_labeled_rows
    from driftloop.store.archive_format import ArchiveError

    if not url:
        raise DatasetError(
            "include_archive needs an archive: set DRIFTLOOP_RETENTION__ARCHIVE_URL "
            "(docs/retention.md#archive)"
        )
    try:
        return archived_labeled_rows(session, model, url, since=since, until=until, variant=variant)
    except (ArchiveError, OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the archive {redact_url(url)}: {exc}") from exc


def _write(
    out: str, snapshot_id: str, content: bytes, manifest: dict[str, Any], progress: Progress | None
) -> tuple[str, str]:
    try:
        fs, root = fsspec.core.url_to_fs(out)
        folder = f"{root.rstrip('/')}/{snapshot_id}"
        fs.makedirs(folder, exist_ok=True)
        data_path, manifest_path = f"{folder}/data.parquet", f"{folder}/manifest.json"
        uri, manifest_uri = fs.unstrip_protocol(data_path), fs.unstrip_protocol(manifest_path)
        if progress is not None:
            progress("write", 0, len(content))
        with fs.open(data_path, "wb") as handle:
            handle.write(content)
        body = {**manifest, "uri": uri, "manifest_uri": manifest_uri}
        with fs.open(manifest_path, "wb") as handle:
            handle.write(json.dumps(body, indent=2, sort_keys=True).encode())
        if progress is not None:
            progress("write", len(content), len(content))
    except (OSError, ValueError, ImportError) as exc:
        raise DatasetError(f"cannot write the snapshot to {out!r}: {exc}") from exc
    return uri, manifest_uri


def get_snapshot(session: Session, snapshot_id: str) -> dict[str, Any] | None:
    """The manifest of snapshot ``snapshot_id``, or None when there is no such snapshot."""
    row = session.scalar(select(SnapshotRow).where(SnapshotRow.snapshot_id == snapshot_id))
    return None if row is None else dict(row.manifest)


def read_snapshot(manifest: dict[str, Any]) -> pd.DataFrame:
    """Read a snapshot's rows back from where its manifest says they are."""
    with fsspec.open(manifest["uri"], "rb") as handle:
        return pq.read_table(handle).to_pandas()
