"""Per-database SQL for the join's scalar columns, and their decoding a whole column at a time.

A label (a JSON scalar) comes as text with its JSON type when that is not a string, so
:func:`decode` types a whole column at once. Timestamps come as integers (PostgreSQL,
microseconds) or ISO text (SQLite) and are converted by pandas in one call. Records' documents
(inputs, outputs) are not taken apart here: see ``driftloop.feedback.documents``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

NUMBER_TYPES = {"number", "integer", "real"}


def _sqlite_path(keys: tuple[str | int, ...]) -> str:
    path = "$"
    for key in keys:
        path += f"[{key}]" if isinstance(key, int) else f'."{key}"'
    return path


class Extractor:
    """Builds the extraction expressions for one dialect (``postgresql`` or ``sqlite``)."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def scalar(self, column: Any, *keys: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """The value at ``keys`` (the whole document when none) and its JSON type when decoding
        needs it (NULL for strings and, on SQLite, numbers, which arrive typed)."""
        if self.postgres:
            parts = [literal(k) for k in keys]
            node = func.jsonb_extract_path(column, *parts) if keys else column
            text = (
                func.jsonb_extract_path_text(column, *parts)
                if keys
                else column.op("#>>")(literal_column("'{}'::text[]"))
            )
            kind = func.jsonb_typeof(node)
            return type_coerce(text, String), case((kind != "string", kind), else_=null())
        path = literal(_sqlite_path(keys))
        kind = func.json_type(column, path)
        flagged = case((kind.in_(["true", "false", "object", "array"]), kind), else_=null())
        return func.json_extract(column, path), flagged

    def epoch_us(self, column: Any) -> ColumnElement[Any]:
        """A timestamp as microseconds since 1970 (PostgreSQL) or its stored text (SQLite)."""
        if self.postgres:
            # date_part is double precision (exact to the microsecond for centuries around now);
            # EXTRACT returns numeric since PostgreSQL 14, whose arithmetic costs more per row.
            return cast(func.round(func.date_part("epoch", column) * 1_000_000), BigInteger)
        return type_coerce(column, String)

    def timestamps(self, values: Any) -> pd.Series:
        """Decode :meth:`epoch_us` values to a UTC datetime column."""
        if isinstance(values, pa.ChunkedArray):
            values = values.to_numpy(zero_copy_only=False)
        if self.postgres:
            return pd.Series(pd.to_datetime(np.asarray(values, dtype="int64"), unit="us", utc=True))
        return pd.Series(
            pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=True)
        )


def _decode_one(value: Any, kind: Any) -> Any:
    if value is None or kind is None:
        return value
    if kind in ("true", "false"):
        return kind == "true"
    if kind == "boolean":
        return value == "true"
    if kind in NUMBER_TYPES:
        number = float(value)
        return int(number) if number.is_integer() and "." not in str(value) else number
    if kind in ("object", "array"):
        return json.loads(value)
    return value


def decode(values: list[Any], kinds: list[Any]) -> pd.Series:
    """A column of JSON scalars from :meth:`Extractor.scalar`: typed values, None for null."""
    series = pd.Series(values, dtype=object)
    flagged = {k for k in set(kinds) if k is not None}
    if not flagged:
        return series.infer_objects()
    if flagged <= NUMBER_TYPES | {"null"} and not _has_strings(values, kinds):
        return pd.to_numeric(series, errors="coerce")
    return pd.Series(
        [_decode_one(v, k) for v, k in zip(values, kinds, strict=True)], dtype=object
    ).infer_objects()


def _has_strings(values: list[Any], kinds: list[Any]) -> bool:
    return any(k is None and v is not None for v, k in zip(values, kinds, strict=True))
