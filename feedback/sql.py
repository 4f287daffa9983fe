"""The join's scalar columns (SQL from the store's dialect), decoded a whole column at a time.

A label (a JSON scalar) comes as text with its JSON type when that is not a string, so
:func:`decode` types a whole column at once. Timestamps come typed (PostgreSQL, through
Arrow) or as ISO text (SQLite) and are converted by pandas in one call. Records' documents
(inputs, outputs) are not taken apart here: see ``driftloop.feedback.documents``.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy.sql.elements import ColumnElement

from driftloop.store.dialect import Dialect

NUMBER_TYPES = {"number", "integer", "real"}


class Extractor:
    """Builds the extraction expressions of one database, through its dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def scalar(self, column: Any, *keys: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """The value at ``keys`` (the whole document when none) and its JSON type when decoding
        needs it (NULL for strings and, on SQLite, numbers, which arrive typed)."""
        return self.dialect.json_scalar(column, *keys)

    def timestamp(self, column: Any) -> ColumnElement[Any]:
        """A timestamp as the driver reads it: typed on PostgreSQL, stored text on SQLite."""
        return self.dialect.raw_timestamp(column)

    def document(self, column: Any) -> ColumnElement[Any]:
        """A JSON document as its text (parsed by Arrow, see ``driftloop.feedback.documents``)."""
        return self.dialect.json_text(column)

    def timestamps(self, values: Any) -> pd.Series:
        """Decode :meth:`timestamp` values (Arrow timestamps or ISO text) to a UTC column."""
        if isinstance(values, pa.ChunkedArray) and pa.types.is_timestamp(values.type):
            # timestamptz arrives as timestamp[us, tz=UTC]: already what pandas needs.
            return values.to_pandas()
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


def decode(values: pd.Series, kinds: pd.Series) -> pd.Series:
    """A column of JSON scalars from :meth:`Extractor.scalar`: typed values, None for null."""
    flagged = set(kinds.dropna().unique())
    if not flagged:
        return values.infer_objects()
    if flagged <= NUMBER_TYPES | {"null"} and not (kinds.isna() & values.notna()).any():
        return pd.to_numeric(values, errors="coerce")
    return pd.Series(
        [_decode_one(v, k) for v, k in zip(values.tolist(), kinds.tolist(), strict=True)],
        dtype=object,
    ).infer_objects()
