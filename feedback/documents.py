"""A column of JSON objects (records' inputs or outputs), parsed all at once, read field by field.

The database sends each document as text; Arrow's C++ JSON reader parses a million of them in
about a second, several times less work than extracting every field inside the database or
calling ``json.loads`` per row. When Arrow cannot give a field one type (a value that is a number
in one row and a string in another), the documents are parsed again with ``json.loads`` so that
every value keeps its own JSON type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

BLOCK_BYTES = 16 << 20


def _as_array(texts: Any) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.string())
    return pc.fill_null(texts, "{}")


def _lines(texts: pa.Array) -> pa.Buffer:
    """The documents as one buffer, a newline after each (JSON lines), built with numpy."""
    wide = pa.types.is_large_string(texts.type)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[texts.offset : texts.offset + len(texts) + 1].astype(np.int64)
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    newlines = offsets[1:] - offsets[0] + np.arange(len(texts))
    out = np.full(len(data) + len(texts), ord("\n"), dtype=np.uint8)
    keep = np.ones(len(out), dtype=bool)
    keep[newlines] = False
    out[keep] = data
    return pa.py_buffer(out)


def parse(texts: Any) -> pa.Table | None:
    """One table row per document, or None when Arrow cannot type the fields."""
    texts = _as_array(texts)
    if len(texts) == 0:
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(_lines(texts)),
            read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == len(texts) else None


def _combine(parts: Sequence[pa.Table | None]) -> pa.Table | None:
    """Tables parsed batch by batch as one, or None when a batch or the union has no type."""
    if not parts or any(part is None for part in parts):
        return None
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


class Documents:
    """The JSON objects of one column, one per row.

    ``parts``, when given, are the column's batches already parsed by :func:`parse` (the join
    parses each batch while the next one is read); they must cover ``texts`` in order.
    """

    def __init__(self, texts: Any, parts: Sequence[pa.Table | None] | None = None) -> None:
        self._texts = texts
        self.rows = len(texts)
        self._table = parse(texts) if parts is None else _combine(parts)
        if self._table is not None and self._table.num_rows != self.rows:
            self._table = None
        self._objects: list[dict[str, Any]] | None = None

    def _python(self) -> list[dict[str, Any]]:
        if self._objects is None:
            parsed = (json.loads(text) for text in _as_array(self._texts).to_pylist())
            self._objects = [d if isinstance(d, dict) else {} for d in parsed]
        return self._objects

    def keys(self) -> list[str]:
        """Field names seen (all of them with Arrow; in the first 1,000 rows otherwise)."""
        if self._table is not None:
            return sorted(self._table.column_names)
        return sorted({k for d in self._python()[:1000] for k in d})

    def _column(self, name: str) -> pa.ChunkedArray | None:
        if self._table is None or name not in self._table.column_names:
            return None
        return self._table.column(name)

    def values(self, name: str) -> pd.Series:
        """The field as typed values (None where absent or null)."""
        if self._table is None:
            return _typed([d.get(name) for d in self._python()])
        column = self._column(name)
        if column is None:
            return pd.Series([None] * self.rows, dtype=object)
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            # One Python object per distinct value: categories repeat a lot.
            return column.to_pandas(deduplicate_objects=True)
        if column.null_count == 0 and (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            return pd.Series(column.to_numpy(zero_copy_only=False))
        if pa.types.is_null(kind):
            return pd.Series([None] * self.rows, dtype=object)
        return _typed(column.to_pylist())

    def numbers(self, name: str) -> pd.Series:
        """The field as floats; NaN where absent or not a number."""
        column = self._column(name)
        if column is not None and _numeric(column.type):
            return pd.Series(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
        values = self.values(name)
        numeric = values.map(lambda v: None if isinstance(v, bool | str) else v)
        return pd.to_numeric(numeric, errors="coerce").astype("float64")

    def score_matrix(
        self, name: str, classes: Sequence[object]
    ) -> tuple[list[str], np.ndarray[Any, Any]] | None:
        """The field's class scores as a matrix, one column per class, and the classes.

        The field holds an object keyed by class or a list aligned with ``classes``. Without
        ``classes``, an object's keys name the classes (sorted). A row without a full set of
        numbers is all NaN; None when no row has a full set. One float matrix rather than a
        dict per row: a million rows of three classes cost 0.1 s instead of 3 s.
        """
        column = self._column(name)
        if self._table is not None and column is None:
            return None  # no row has the field
        names = [str(c) for c in classes]
        matrix = None
        if column is not None:
            array = column.combine_chunks()
            if not names and pa.types.is_struct(array.type):
                names = sorted(array.type.field(i).name for i in range(array.type.num_fields))
            if names:
                matrix = self._score_matrix(array, names)
        if matrix is None:
            found = [_as_dict(v, names) for v in self.values(name)]
            if not names:
                names = sorted({k for d in found if d is not None for k in d})
            if not names:
                return None
            matrix = np.array(
                [[d.get(c, np.nan) for c in names] if d else [np.nan] * len(names) for d in found],
                dtype=np.float64,
            ).reshape(len(found), len(names))
        incomplete = np.isnan(matrix).any(axis=1)
        if incomplete.all():
            return None
        matrix[incomplete] = np.nan
        return names, matrix

    @staticmethod
    def _score_matrix(column: pa.Array, classes: Sequence[str]) -> np.ndarray[Any, Any] | None:
        if pa.types.is_struct(column.type):
            names = {column.type.field(i).name for i in range(column.type.num_fields)}
            parts = []
            for cls in classes:
                if cls not in names:
                    return np.full((len(column), len(classes)), np.nan)
                part = column.field(cls)
                if not _numeric(part.type):
                    return None
                valid = pc.and_kleene(part.is_valid(), column.is_valid())
                values = pc.cast(part, pa.float64()).to_numpy(zero_copy_only=False)
                parts.append(np.where(valid.to_numpy(zero_copy_only=False), values, np.nan))
            return np.column_stack(parts)
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            inner = column.type.value_type
            if not _numeric(inner):
                return None
            lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
            full = lengths == len(classes)
            out = np.full((len(column), len(classes)), np.nan)
            if full.any():
                flat = pc.cast(pc.list_flatten(column.filter(pa.array(full))), pa.float64())
                out[full] = flat.to_numpy(zero_copy_only=False).reshape(-1, len(classes))
            return out
        return None


def _as_dict(scores: Any, classes: Sequence[str]) -> dict[str, float] | None:
    if isinstance(scores, dict):
        out = {str(k): float(v) for k, v in scores.items() if isinstance(v, int | float)}
        return out if out and all(c in out for c in classes) else None
    if (
        isinstance(scores, list)
        and classes
        and len(scores) == len(classes)
        and all(isinstance(v, int | float) for v in scores)
    ):
        return {c: float(v) for c, v in zip(classes, scores, strict=True)}
    return None


def _typed(values: list[Any]) -> pd.Series:
    """Values as a column: typed when complete, else objects (so 1 stays 1, not 1.0 beside a
    missing value)."""
    series = pd.Series(values, dtype=object)
    return series if series.isna().any() else series.infer_objects()


def _numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))
