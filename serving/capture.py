"""Turn one captured request/response pair into records (ARCHITECTURE §3).

Runs off the request path, in the shipper's thread. Rows are located with the model schema's
:class:`~driftloop.contract.Layout`: a list of objects, a single object, a column-oriented object
or a 2-D array with declared column names; predictions and scores come from the response.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.contract import Layout, Prediction

__all__ = ["Captured", "RecordShape", "extract_records", "find_path"]


@dataclass(frozen=True, slots=True)
class Captured:
    """What the proxy or middleware saw of one request; parsed later."""

    model: str
    version: str
    variant: str
    request_id: str
    timestamp: datetime
    request_body: bytes
    response_body: bytes
    status: int
    latency_ms: float
    response_encoding: bytes = b""


@dataclass(frozen=True)
class RecordShape:
    """Where rows live (layout) and what the outputs are called (prediction)."""

    layout: Layout
    prediction: Prediction

    @classmethod
    def default(cls) -> RecordShape:
        """The default layout: ``{"inputs": [{...}]}`` in, rows of outputs out."""
        return cls(Layout(), Prediction())


_MISSING = object()


def find_path(document: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``document`` (the document itself for ``""``)."""
    if not path:
        return document
    for part in path.split("."):
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return _MISSING
    return document


def _input_rows(value: Any, columns: list[str] | None) -> tuple[list[dict[str, Any]], bool]:
    """Rows of inputs, and whether the request held a single row (not a list)."""
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        if value and len(lists) == len(value) and len({len(v) for v in lists}) == 1:
            n = len(lists[0])
            return [{k: v[i] for k, v in value.items()} for i in range(n)], False
        return [value], True
    if isinstance(value, list):
        if not value:
            return [], False
        if all(isinstance(row, dict) for row in value):
            return list(value), False
        if all(isinstance(row, list) for row in value):
            return [_named(row, columns) for row in value], False
        if not any(isinstance(row, dict | list) for row in value):
            return [_named(value, columns)], True
    return [], False


def _named(row: list[Any], columns: list[str] | None) -> dict[str, Any]:
    names = columns if columns and len(columns) == len(row) else [f"x{i}" for i in range(len(row))]
    return dict(zip(names, row, strict=True))


def _output_rows(value: Any, n: int, prediction: Prediction) -> list[dict[str, Any]]:
    field, scores = prediction.field, prediction.scores_field
    if isinstance(value, dict):
        column = value.get(field, _MISSING)
        if column is _MISSING:
            for plural in (field + "s", field + "es"):
                column = value.get(plural, _MISSING)
                if column is not _MISSING:
                    break
        if isinstance(column, list) and (n != 1 or len(column) == 1):
            score_column = value.get(scores, [])
            out = []
            for i, item in enumerate(column):
                row = {field: item}
                if isinstance(score_column, list) and i < len(score_column):
                    row[scores] = score_column[i]
                out.append(row)
            return out
        return [value]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                out.append(item)
            elif isinstance(item, list):
                out.append({field: item[0]} if len(item) == 1 else {scores: item})
            else:
                out.append({field: item})
        return out
    if value is _MISSING:
        return []
    return [{field: value}]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def extract_records(item: Captured, shape: RecordShape) -> list[dict[str, Any]]:
    """The records of one request: one per input row, outputs matched by position.

    Returns ``[]`` when the request carries no rows where the layout says (a health check, a
    different endpoint). Raises ``ValueError`` when a body is not JSON.
    """
    request = json.loads(item.request_body)
    rows, single = _input_rows(find_path(request, shape.layout.input_path), shape.layout.columns)
    if not rows:
        return []
    outputs: list[dict[str, Any]] = []
    if 200 <= item.status < 300 and item.response_body:
        try:
            body = item.response_body
            if item.response_encoding == b"gzip":
                body = gzip.decompress(body)
            response = json.loads(body)
        except (ValueError, OSError, EOFError):
            response = _MISSING
        outputs = _output_rows(
            find_path(response, shape.layout.output_path), len(rows), shape.prediction
        )
    n = len(rows)
    timestamp = item.timestamp.isoformat()
    records = []
    for i, row in enumerate(rows):
        request_id = item.request_id if single or n == 1 else f"{item.request_id}-{i}"
        records.append(
            {
                "schema_version": 1,
                "request_id": request_id,
                "model": item.model,
                "version": item.version,
                "variant": item.variant,
                "timestamp": timestamp,
                "inputs": _finite(row) if isinstance(row, dict) else {"value": row},
                "outputs": _finite(outputs[i]) if i < len(outputs) else {},
                "latency_ms": round(max(item.latency_ms, 0.0), 3),
                "status": item.status,
            }
        )
    return records
