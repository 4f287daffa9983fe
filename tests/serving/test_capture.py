"""Records from request/response pairs, for every layout the model schema can declare."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from driftloop.contract import Batch, Layout, Prediction
from driftloop.serving.capture import Captured, RecordShape, extract_records

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def captured(request: Any, response: Any, status: int = 200, **kw: Any) -> Captured:
    return Captured(
        model="iris",
        version="v1",
        variant=kw.pop("variant", "champion"),
        request_id=kw.pop("request_id", "req"),
        timestamp=NOW,
        request_body=json.dumps(request).encode(),
        response_body=response if isinstance(response, bytes) else json.dumps(response).encode(),
        status=status,
        latency_ms=2.5,
        **kw,
    )


def shaped(**layout: Any) -> RecordShape:
    return RecordShape(Layout(**layout), Prediction())


def test_a_record_list_gives_one_record_per_row_with_suffixed_ids() -> None:
    item = captured(
        {"inputs": [{"a": 1}, {"a": 2}]},
        [{"prediction": "x", "probabilities": {"x": 0.9}}, {"prediction": "y"}],
    )
    records = extract_records(item, RecordShape.default())
    assert [r["request_id"] for r in records] == ["req-0", "req-1"]
    assert [r["inputs"] for r in records] == [{"a": 1}, {"a": 2}]
    assert records[0]["outputs"] == {"prediction": "x", "probabilities": {"x": 0.9}}
    assert records[1]["outputs"] == {"prediction": "y"}
    # Every record passes the wire contract the monitor enforces.
    Batch.model_validate({"batch_id": "b", "records": records})


def test_a_single_row_keeps_the_request_id() -> None:
    records = extract_records(captured({"inputs": [{"a": 1}]}, [5]), RecordShape.default())
    assert [(r["request_id"], r["outputs"]) for r in records] == [("req", {"prediction": 5})]


def test_a_single_object_is_one_row() -> None:
    records = extract_records(
        captured({"a": 1, "b": "z"}, {"prediction": 1}), shaped(input_path="")
    )
    assert [(r["request_id"], r["inputs"], r["outputs"]) for r in records] == [
        ("req", {"a": 1, "b": "z"}, {"prediction": 1})
    ]


def test_a_2d_array_is_named_by_the_declared_columns() -> None:
    shape = shaped(input_path="input_series", columns=["sl", "sw"])
    records = extract_records(captured({"input_series": [[1.0, 2.0], [3.0, 4.0]]}, [0, 1]), shape)
    assert [r["inputs"] for r in records] == [{"sl": 1.0, "sw": 2.0}, {"sl": 3.0, "sw": 4.0}]
    assert [r["outputs"] for r in records] == [{"prediction": 0}, {"prediction": 1}]


def test_column_oriented_inputs_and_outputs() -> None:
    item = captured(
        {"data": {"rows": {"a": [1, 2], "b": [3, 4]}}},
        {"result": {"predictions": ["p", "q"], "probabilities": [{"p": 1.0}, {"q": 1.0}]}},
    )
    records = extract_records(item, shaped(input_path="data.rows", output_path="result"))
    assert [r["inputs"] for r in records] == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    assert [r["outputs"] for r in records] == [
        {"prediction": "p", "probabilities": {"p": 1.0}},
        {"prediction": "q", "probabilities": {"q": 1.0}},
    ]


def test_a_gzip_response_is_decompressed() -> None:
    item = captured(
        {"inputs": [{"a": 1}]}, gzip.compress(b'[{"prediction": 3}]'), response_encoding=b"gzip"
    )
    assert extract_records(item, RecordShape.default())[0]["outputs"] == {"prediction": 3}


def test_a_failed_answer_is_recorded_with_its_status_and_no_outputs() -> None:
    records = extract_records(
        captured({"inputs": [{"a": 1}]}, b"boom", status=502), RecordShape.default()
    )
    assert [(r["status"], r["outputs"]) for r in records] == [(502, {})]


def test_requests_without_rows_give_no_records() -> None:
    assert extract_records(captured({"other": 1}, {}), RecordShape.default()) == []


def test_a_body_that_is_not_json_is_an_error() -> None:
    item = Captured("iris", "v1", "champion", "r", NOW, b"not json", b"", 200, 1.0)
    with pytest.raises(ValueError, match="Expecting value"):
        extract_records(item, RecordShape.default())


def test_non_finite_numbers_become_null() -> None:
    item = Captured(
        "iris",
        "v1",
        "champion",
        "r",
        NOW,
        b'{"inputs": [{"a": NaN, "b": Infinity}]}',
        b"[1]",
        200,
        1.0,
    )
    assert extract_records(item, RecordShape.default())[0]["inputs"] == {"a": None, "b": None}
