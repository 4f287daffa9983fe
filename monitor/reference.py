"""Reference datasets: parsed from Parquet or CSV, stored as Parquet, loaded as DataFrames."""

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
from driftloop.store import Model, ReferenceDataset

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


def save_reference(
    session: Session, model: Model, frame: pd.DataFrame, now: datetime
) -> ReferenceDataset:
    """Store ``frame`` as the model's reference dataset."""
    content = to_parquet(frame)
    row = ReferenceDataset(
        model_id=model.id,
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


def latest_reference(session: Session, model: Model) -> ReferenceDataset | None:
    """The newest reference dataset row of ``model``."""
    return session.scalar(
        select(ReferenceDataset)
        .where(ReferenceDataset.model_id == model.id)
        .order_by(ReferenceDataset.id.desc())
        .limit(1)
    )


def load_reference(session: Session, model: Model) -> pd.DataFrame | None:
    """The model's reference dataset as a DataFrame, or None when none was uploaded."""
    row = latest_reference(session, model)
    if row is None:
        return None
    return pq.read_table(io.BytesIO(row.content)).to_pandas()
