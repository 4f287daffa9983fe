"""Layout inference, OIP v2 tensors and the record maker's counted reasons (issue 23)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftloop.contract import Feature, FeatureKind, Layout, ModelSchema, Prediction
from driftloop.serving.capture import Captured, RecordShape
from driftloop.serving.layout import infer_layout, layouts_from_openapi
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.records import RecordMaker

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OIP_REQUEST = {
    "id": "oip-42",
    "inputs": [
        {"name": "x", "shape": [3, 4], "datatype": "FP32", "data": list(range(12))},
    ],
}
OIP_RESPONSE = {
    "model_name": "m",
    "id": "oip-42",
    "outputs": [
        {"name": "label", "shape": [3], "datatype": "INT64", "data": [0, 1, 1]},
        {"name": "probabilities", "shape": [3, 2], "datatype": "FP32",
         "data": [0.9, 0.1, 0.2, 0.8, 0.3, 0.7]},
    ],
}  # fmt: skip


def captured(body: Any, response: Any, *, path: str = "/predict", minted: bool = False) -> Captured:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Captured(
        "m", "v1", "champion", "rid", NOW, raw, json.dumps(response).encode(), 200, 1.0,
        b"", path, minted,
    )  # fmt: skip


@pytest.fixture
def maker() -> tuple[RecordMaker, CollectorRegistry]:
    registry = CollectorRegistry()
    return RecordMaker("m", ShippingMetrics(registry)), registry


def dropped(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "driftloop_records_dropped_total", {"model": "m", "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("body", "input_path", "how"),
    [
        (OIP_REQUEST, "inputs", "oip_v2"),
        ({"inputs": [{"a": 1}]}, "inputs", "inputs"),
        ({"instances": [[1, 2], [3, 4]]}, "instances", "inputs"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, "dataframe_split", "inputs"),
        ({"df": [{"alcohol": 13.2}, {"alcohol": 12.1}]}, "df", "argument"),
        ({"df": {"alcohol": [13.2, 12.1], "malic_acid": [1.8, 2.0]}}, "df", "argument"),
        ([{"a": 1}, {"a": 2}], "", "records"),
        ({"alcohol": 13.2, "colour": "red"}, "", "object"),
        ({"x": 1.5}, "", "object"),
    ],
    ids=["oip-v2", "inputs", "instances", "mlflow-split", "dataframe-records",
         "dataframe-columns", "list-of-objects", "typed-arguments", "one-scalar"],
)  # fmt: skip
def test_each_request_shape_is_recognised(body: Any, input_path: str, how: str) -> None:
    layout = infer_layout(body)
    assert layout is not None
    assert (layout.input_path, layout.inferred) == (input_path, how)


@pytest.mark.parametrize("body", [{"a": {"b": 1}}, [], "text", 3, {}], ids=str)
def test_bodies_without_visible_rows_give_no_layout(body: Any) -> None:
    assert infer_layout(body) is None


def test_oip_v2_rows_lie_along_the_first_dimension_named_input_j(
    maker: tuple[RecordMaker, CollectorRegistry],
) -> None:
    records = maker[0].records(captured(OIP_REQUEST, OIP_RESPONSE))
    assert [r["inputs"] for r in records] == [
        {f"x_{j}": 4 * i + j for j in range(4)} for i in range(3)
    ]
    assert [r["outputs"] for r in records] == [
        {"prediction": 0, "probabilities": [0.9, 0.1]},
        {"prediction": 1, "probabilities": [0.2, 0.8]},
        {"prediction": 1, "probabilities": [0.3, 0.7]},
    ]
    assert [r["request_id"] for r in records] == ["rid-0", "rid-1", "rid-2"]


def test_oip_v2_columns_take_the_declared_feature_names_and_the_body_id() -> None:
    schema = ModelSchema(features=[Feature(name=n, kind=FeatureKind.numerical) for n in "abcd"])
    registry = CollectorRegistry()
    maker = RecordMaker("m", ShippingMetrics(registry), RecordShape.from_schema(schema))
    records = maker.records(captured(OIP_REQUEST, OIP_RESPONSE, minted=True))
    assert records[1]["inputs"] == {"a": 4, "b": 5, "c": 6, "d": 7}
    assert [r["request_id"] for r in records] == ["oip-42-0", "oip-42-1", "oip-42-2"]


def test_an_incoming_request_id_wins_over_the_oip_body_id(
    maker: tuple[RecordMaker, CollectorRegistry],
) -> None:
    records = maker[0].records(captured(OIP_REQUEST, OIP_RESPONSE, minted=False))
    assert records[0]["request_id"] == "rid-0"


def test_bytes_tensors_are_categorical_strings(
    maker: tuple[RecordMaker, CollectorRegistry],
) -> None:
    body = {"inputs": [
        {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Lima"]},
        {"name": "age", "shape": [2, 1], "datatype": "INT32", "data": [[31], [47]]},
    ]}  # fmt: skip
    records = maker[0].records(captured(body, {"outputs": []}))
    assert [r["inputs"] for r in records] == [
        {"city": "Oslo", "age": 31},
        {"city": "Lima", "age": 47},
    ]


def test_dataframe_and_typed_argument_routes_get_their_own_layouts(
    maker: tuple[RecordMaker, CollectorRegistry],
) -> None:
    rm, _ = maker
    frame = rm.records(captured({"df": [{"alcohol": 13.2}, {"alcohol": 12.1}]}, [6.7, 6.1],
                                path="/score"))  # fmt: skip
    typed = rm.records(captured({"alcohol": 13.2, "colour": "red"},
                                {"prediction": "good", "probabilities": [0.8, 0.2]},
                                path="/classify"))  # fmt: skip
    assert [r["inputs"] for r in frame] == [{"alcohol": 13.2}, {"alcohol": 12.1}]
    assert [r["outputs"] for r in frame] == [{"prediction": 6.7}, {"prediction": 6.1}]
    assert typed[0]["inputs"] == {"alcohol": 13.2, "colour": "red"}
    assert typed[0]["outputs"] == {"prediction": "good", "probabilities": [0.8, 0.2]}
    assert {p: lay.input_path for p, lay in rm.inferred.items()} == {
        "/score": "df",
        "/classify": "",
    }


def test_a_registered_layout_always_wins(maker: tuple[RecordMaker, CollectorRegistry]) -> None:
    rm, registry = maker
    rm.shape = RecordShape(Layout(input_path="inputs"), Prediction())
    assert rm.records(captured({"df": [{"a": 1}]}, [1])) == []
    assert dropped(registry, "no_rows") == 1
    assert rm.inferred == {}


def test_unparsable_and_rowless_requests_are_counted_and_logged_once_per_route(
    maker: tuple[RecordMaker, CollectorRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    rm, registry = maker
    with caplog.at_level(logging.WARNING, logger="driftloop.serving.records"):
        for _ in range(3):
            assert rm.records(captured(b"not json at all", {})) == []
            assert rm.records(captured({"a": {"b": 1}}, {})) == []
    assert dropped(registry, "not_json") == 3
    assert dropped(registry, "no_rows") == 3
    assert (
        registry.get_sample_value(
            "driftloop_capture_requests_total", {"model": "m", "result": "dropped"}
        )
        == 6
    )
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "no_rows" in messages[1]
    assert '"routes": {"/predict"' in messages[1]


def test_inferred_layouts_are_reported_once_per_route() -> None:
    reports: list[tuple[str, Layout]] = []
    rm = RecordMaker(
        "m", ShippingMetrics(CollectorRegistry()), report=lambda p, lay: reports.append((p, lay))
    )
    for _ in range(3):
        rm.records(captured({"df": [{"a": 1}]}, [1], path="/score"))
    assert [(p, lay.input_path, lay.inferred) for p, lay in reports] == [
        ("/score", "df", "argument")
    ]


BENTO_OPENAPI = {
    "paths": {
        "/healthz": {"get": {}},
        "/score": {"post": {"requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"df": {"type": "array", "items": {"type": "object"}}},
        }}}}}},
        "/classify": {"post": {"requestBody": {"content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/classify__Input"}}}}}},
    },
    "components": {"schemas": {"classify__Input": {"type": "object", "properties": {
        "alcohol": {"type": "number"}, "colour": {"type": "string"}}}}},
}  # fmt: skip


def test_the_openapi_document_gives_each_routes_argument() -> None:
    layouts = layouts_from_openapi(BENTO_OPENAPI)
    assert {p: (lay.input_path, lay.inferred) for p, lay in layouts.items()} == {
        "/score": ("df", "openapi"),
        "/classify": ("", "openapi"),
    }


def readme_examples() -> list[tuple[str, int]]:
    """``(request JSON, records)`` of every example in the README's *Where the rows are*."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Where the rows are", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"`([\[{][^`]*)` → (\d+) record", section)
    return [(body, int(n)) for body, n in found]


def test_the_readme_has_worked_examples_of_every_shape() -> None:
    kinds = {infer_layout(json.loads(body)).inferred for body, _ in readme_examples()}  # type: ignore[union-attr]
    assert kinds == {"oip_v2", "inputs", "argument", "records", "object"}


@pytest.mark.parametrize(("body", "count"), readme_examples())
def test_every_readme_example_gives_the_records_it_promises(body: str, count: int) -> None:
    rm = RecordMaker("m", ShippingMetrics(CollectorRegistry()))
    assert len(rm.records(captured(json.loads(body), [1] * count))) == count


@pytest.mark.parametrize(
    ("response", "outputs"),
    [
        ([0, 1], [{"prediction": 0}, {"prediction": 1}]),
        ({"predictions": ["a", "b"]}, [{"prediction": "a"}, {"prediction": "b"}]),
        (
            {"prediction": ["a", "b"], "probabilities": [[0.9, 0.1], [0.2, 0.8]]},
            [{"prediction": "a", "probabilities": [0.9, 0.1]},
             {"prediction": "b", "probabilities": [0.2, 0.8]}],
        ),
        ({"outputs": [{"label": "a"}, {"label": "b"}]}, [{"label": "a"}, {"label": "b"}]),
        ({"probabilities": [[0.9, 0.1], [0.2, 0.8]]},
         [{"probabilities": [0.9, 0.1]}, {"probabilities": [0.2, 0.8]}]),
    ],
    ids=["bare-list", "predictions", "with-probabilities", "outputs-rows", "probabilities-only"],
)  # fmt: skip
def test_each_response_shape_gives_one_output_per_row(
    maker: tuple[RecordMaker, CollectorRegistry], response: Any, outputs: list[dict[str, Any]]
) -> None:
    records = maker[0].records(captured({"inputs": [{"a": 1}, {"a": 2}]}, response))
    assert [r["outputs"] for r in records] == outputs
