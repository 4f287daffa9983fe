"""Reference datasets: parsed from Parquet or CSV, stored as Parquet, loaded as DataFrames.

A reference belongs to the model (``version`` None) or to one version (the data that version was
trained on). :func:`reference_for` picks what a version is compared with: its own newest
reference, else the model's default, which is the champion's own reference when it has one (so
a promotion moves the default), else the newest unversioned one.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import FeatureKind, ModelSchema
from driftloop.errors import DatasetError
from driftloop.store import Model, ModelVersion, ReferenceDataset

PARQUET_MAGIC = b"PAR1"


def read_dataset(data: bytes, content_type: str = "") -> pd.DataFrame:
    """Parse Parquet (sniffed by its magic bytes) or CSV into a DataFrame.

    Raises :class:`DatasetError` naming what is wrong; never returns an empty frame.
    """
    if not data:
        raise DatasetError("the dataset is empty")
    try:
        if data[:4] == PARQUET_MAGIC or "parquet" in content_type:
            frame = pq.read_table(io.BytesIO(data)).to_pandas()
        else:
            frame = pd.read_csv(io.BytesIO(data))
    except (pa.ArrowException, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        kind = "Parquet" if data[:4] == PARQUET_MAGIC else "CSV"
        raise DatasetError(f"cannot read the dataset as {kind}: {exc}") from exc
    if frame.empty or len(frame.columns) == 0:
        raise DatasetError("the dataset has no rows or no columns")
    frame.columns = [str(c) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DatasetError(f"the dataset repeats columns {duplicated}")
    if any("\x00" in c for c in frame.columns):
        raise DatasetError("column names may not contain NUL characters")
    return frame


def check_against_schema(frame: pd.DataFrame, schema: ModelSchema) -> None:
    """Raise :class:`DatasetError` when declared features are missing or of the wrong kind."""
    missing = [f.name for f in schema.features if f.name not in frame.columns]
    if missing:
        raise DatasetError(f"the dataset lacks the declared features {missing}")
    wrong = [
        f.name
        for f in schema.features
        if f.kind is FeatureKind.numerical and not pd.api.types.is_numeric_dtype(frame[f.name])
    ]
    if wrong:
        raise DatasetError(f"declared numerical features hold non-numbers: {wrong}")


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Serialise ``frame`` as Parquet bytes (deterministic for the same content)."""
    sink = io.BytesIO()
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise DatasetError(f"the dataset has columns of mixed types: {exc}") from exc
    pq.write_table(table, sink)
    return sink.getvalue()


def unmatched_columns(frame: pd.DataFrame, schema: ModelSchema) -> list[str]:
    """The schema's features the dataset lacks (a reference of another model, or a new schema)."""
    return [f.name for f in schema.features if f.name not in frame.columns]


def save_reference(
    session: Session,
    model: Model,
    frame: pd.DataFrame,
    now: datetime,
    version: str | None = None,
) -> ReferenceDataset:
    """Store ``frame`` as the reference dataset of ``model`` (or of one of its versions)."""
    content = to_parquet(frame)
    row = ReferenceDataset(
        model_id=model.id,
        version=version,
        rows=len(frame),
        columns={
            "names": list(frame.columns),
            "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        },
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _newest(session: Session, model: Model, version: str | None) -> ReferenceDataset | None:
    query = select(ReferenceDataset).where(ReferenceDataset.model_id == model.id)
    if version is None:
        query = query.where(ReferenceDataset.version.is_(None))
    else:
        query = query.where(ReferenceDataset.version == version)
    return session.scalar(query.order_by(ReferenceDataset.id.desc()).limit(1))


def champion_version(session: Session, model: Model) -> str | None:
    """The version serving as champion, if one is registered."""
    return session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.model_id == model.id, ModelVersion.role == "champion")
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def latest_reference(session: Session, model: Model) -> ReferenceDataset | None:
    """The model's default reference: the champion's own, else the newest unversioned one,
    else the newest of any version."""
    champion = champion_version(session, model)
    row = _newest(session, model, champion) if champion is not None else None
    if row is None:
        row = _newest(session, model, None)
    if row is None:
        row = session.scalar(
            select(ReferenceDataset)
            .where(ReferenceDataset.model_id == model.id)
            .order_by(ReferenceDataset.id.desc())
            .limit(1)
        )
    return row


def reference_for(
    session: Session, model: Model, version: str | None = None
) -> ReferenceDataset | None:
    """What ``version`` is compared with: its own newest reference, else the default."""
    if version is not None:
        own = _newest(session, model, version)
        if own is not None:
            return own
    return latest_reference(session, model)


def reference_ids(session: Session, model: Model) -> tuple[dict[str, int], int | None]:
    """In two queries: each version's own newest reference id, and the default's id (the
    champion's own, else the newest unversioned, else the newest)."""
    rows = session.execute(
        select(ReferenceDataset.id, ReferenceDataset.version)
        .where(ReferenceDataset.model_id == model.id)
        .order_by(ReferenceDataset.id)
    ).all()
    if not rows:
        return {}, None
    own: dict[str, int] = {}
    unversioned: int | None = None
    for row_id, version in rows:
        if version is None:
            unversioned = row_id
        else:
            own[version] = row_id
    champion = champion_version(session, model)
    default = own.get(champion) if champion is not None else None
    if default is None:
        default = unversioned if unversioned is not None else rows[-1][0]
    return own, default


def load_reference(
    session: Session, model: Model, version: str | None = None
) -> pd.DataFrame | None:
    """The reference ``version`` is compared with as a DataFrame (the model's default when
    ``version`` is None or has none), or None when none was uploaded."""
    row = reference_for(session, model, version)
    if row is None:
        return None
    return pq.read_table(io.BytesIO(row.content)).to_pandas()
