"""Turn one captured request/response pair into records (ARCHITECTURE §3).

Runs off the request path, in the shipper's thread. Rows are located with a
:class:`~driftloop.contract.Layout` (registered, or inferred per route by
:mod:`driftloop.serving.layout`): a list of objects, a single object, a column-oriented object,
a split object, a 2-D array with declared column names, or OIP v2 tensors; predictions and
scores come from the response (a bare list, ``{"prediction": ...}``, OIP v2 ``outputs``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.contract import Layout, ModelSchema, Prediction
from driftloop.serving import oip

__all__ = ["Captured", "RecordShape", "extract_records", "find_path", "records_from"]


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
    path: str = ""  # the route, for per-route layouts
    minted_id: bool = False  # no usable X-Request-ID came: an OIP v2 body ``id`` may replace it


@dataclass(frozen=True)
class RecordShape:
    """Where rows live (layout: registered, or None to infer per route) and what the outputs
    are called (prediction); ``features`` name the columns of arrays and tensors."""

    layout: Layout | None
    prediction: Prediction
    features: tuple[str, ...] = ()
    routes: Mapping[str, Layout] = field(default_factory=dict)

    @classmethod
    def default(cls) -> RecordShape:
        """No layout registered: rows are found per route by inference."""
        return cls(None, Prediction())

    @classmethod
    def from_schema(cls, schema: ModelSchema) -> RecordShape:
        """The shape of a model schema: its registered layouts (inferred ones are only hints)."""
        routes = {p: lay for p, lay in schema.routes.items() if lay.inferred is None}
        layout = schema.layout if schema.layout and schema.layout.inferred is None else None
        features = tuple(f.name for f in schema.features)
        return cls(layout, schema.prediction, features, routes)

    def registered(self, path: str) -> Layout | None:
        """The registered layout of route ``path``, if any (a route's own wins)."""
        return self.routes.get(path) or self.layout


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
    if (
        isinstance(value, dict)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("data"), list)
        and set(value) <= {"columns", "data", "index"}
    ):  # pandas orient="split" (MLflow's dataframe_split)
        names = [str(c) for c in value["columns"]]
        data = value["data"]
        if all(isinstance(r, list) and len(r) == len(names) for r in data):
            return [dict(zip(names, r, strict=True)) for r in data], False
        return [], False
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
    if oip.is_oip_response(value):
        return oip.output_rows(value["outputs"], field, scores)
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
        if n > 1:
            # Rows under one key: {"outputs": [...]} mirroring {"inputs": [...]}, or scores
            # alone ({"probabilities": [[...], ...]}).
            lists = [(k, v) for k, v in value.items() if isinstance(v, list) and len(v) == n]
            if len(lists) == 1:
                key, rows = lists[0]
                if key == scores:
                    return [{scores: item} for item in rows]
                return _output_rows(rows, n, prediction)
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


def extract_records(
    item: Captured, shape: RecordShape, layout: Layout | None = None
) -> list[dict[str, Any]]:
    """The records of one request: one per input row, outputs matched by position.

    ``layout`` defaults to the shape's registered one (else ``{"inputs": ...}``). Returns ``[]``
    when the request carries no rows where the layout says (a health check, a different
    endpoint). Raises ``ValueError`` when a body is not JSON.
    """
    layout = layout or shape.registered(item.path) or Layout()
    return records_from(item, json.loads(item.request_body), layout, shape)


def _request_rows(
    document: Any, layout: Layout, features: tuple[str, ...]
) -> tuple[list[dict[str, Any]], bool]:
    value = find_path(document, layout.input_path)
    if layout.protocol == "oip_v2":
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            return [], False
        rows = oip.tensor_rows(value, layout.columns or features)
        return rows, False
    return _input_rows(value, layout.columns or (list(features) if features else None))


def _response(item: Captured) -> Any:
    try:
        body = item.response_body
        if item.response_encoding == b"gzip":
            body = gzip.decompress(body)
    except (OSError, EOFError):
        return _MISSING
    try:
        return json.loads(body)
    except ValueError:
        # A typed API answering ``-> str`` (BentoML: text/plain) still carries the prediction.
        if 0 < len(body) <= 200:
            try:
                return body.decode()
            except UnicodeDecodeError:
                return _MISSING
        return _MISSING


def records_from(
    item: Captured, request: Any, layout: Layout, shape: RecordShape
) -> list[dict[str, Any]]:
    """The records of one request already parsed as ``request``, with rows where ``layout``
    says; ``[]`` when there are none. Raises ``ValueError`` for tensors that disagree."""
    rows, single = _request_rows(request, layout, shape.features)
    if not rows:
        return []
    outputs: list[dict[str, Any]] = []
    if 200 <= item.status < 300 and item.response_body:
        outputs = _output_rows(
            find_path(_response(item), layout.output_path), len(rows), shape.prediction
        )
    request_id = item.request_id
    if item.minted_id and isinstance(request, dict):
        given = request.get("id")  # OIP v2 (and v1) carry the caller's id in the body
        if (
            isinstance(given, str)
            and 0 < len(given) <= 180
            and given.isascii()
            and given.isprintable()
            and " " not in given
        ):
            request_id = given
    n = len(rows)
    timestamp = item.timestamp.isoformat()
    records = []
    for i, row in enumerate(rows):
        rid = request_id if single or n == 1 else f"{request_id}-{i}"
        records.append(
            {
                "schema_version": 1,
                "request_id": rid,
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
