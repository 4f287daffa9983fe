"""Open Inference Protocol v2 (KServe, Triton, MLServer) tensors as rows and outputs.

A request ``{"id"?, "inputs": [{"name", "shape", "datatype", "data"}]}`` holds rows along the
first dimension of every tensor: ``shape [3, 4]`` is 3 rows of 4 values. Columns are named by the
schema's features when it declares exactly as many (one input), else ``<input name>`` for one
value per row and ``<input name>_<j>`` for several. ``BYTES`` values are kept as strings, so the
monitor treats them as categories. The response ``{"outputs": [...]}`` is read the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["is_oip_response", "output_rows", "tensor_rows"]

_SCORES = ("prob", "score", "logit")


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for value in data:
        out.extend(_flatten(value))
    return out


def _tensor(tensor: dict[str, Any]) -> tuple[str, int, int, list[Any]]:
    """Name, rows, values per row and the flat values of one tensor; ValueError if they disagree."""
    name = str(tensor.get("name", "x"))
    values = _flatten(tensor.get("data"))
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) for d in shape):
        shape = [len(values)]
    rows = shape[0]
    width = 1
    for dim in shape[1:]:
        width *= dim
    if rows < 0 or width < 0 or rows * width != len(values):
        raise ValueError(f"tensor {name!r}: shape {shape} does not match {len(values)} values")
    if str(tensor.get("datatype", "")).upper() == "BYTES":
        values = [v if isinstance(v, str) else str(v) for v in values]
    return name, rows, width, values


def tensor_rows(inputs: list[dict[str, Any]], features: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows of an OIP v2 request's ``inputs``; ValueError when tensors disagree on rows."""
    tensors = [_tensor(t) for t in inputs]
    counts = {rows for _, rows, _, _ in tensors}
    if len(counts) != 1:
        raise ValueError(f"OIP v2 inputs disagree on the number of rows: {sorted(counts)}")
    n = counts.pop()
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    single = len(tensors) == 1
    for name, _, width, values in tensors:
        if single and len(features) == width:
            names = list(features)
        elif width == 1:
            names = [name]
        else:
            names = [f"{name}_{j}" for j in range(width)]
        for i, row in enumerate(rows):
            base = i * width
            for j, column in enumerate(names):
                row[column] = values[base + j]
    return rows


def is_oip_response(document: Any) -> bool:
    """Whether ``document`` is an OIP v2 inference response."""
    outputs = document.get("outputs") if isinstance(document, dict) else None
    return (
        isinstance(outputs, list)
        and bool(outputs)
        and all(isinstance(t, dict) and "data" in t for t in outputs)
    )


def output_rows(outputs: list[dict[str, Any]], field: str, scores: str) -> list[dict[str, Any]]:
    """One dict of outputs per row: the first one-value tensor is the prediction, a several-value
    tensor named like probabilities or scores (or the only output) the scores, others by name."""
    tensors = [_tensor(t) for t in outputs]
    n = max((rows for _, rows, _, _ in tensors), default=0)
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    has_prediction = has_scores = False
    for name, rows, width, values in tensors:
        if width == 1 and not has_prediction:
            key, has_prediction = field, True
        elif (
            width > 1
            and not has_scores
            and (len(tensors) == 1 or any(s in name.lower() for s in _SCORES))
        ):
            key, has_scores = scores, True
        else:
            key = name
        for i in range(min(rows, n)):
            out[i][key] = values[i] if width == 1 else values[i * width : (i + 1) * width]
    return out
