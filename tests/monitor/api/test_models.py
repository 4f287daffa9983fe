"""``/v1/models`` and ``PUT /v1/models/{name}/reference``."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.monitor.api.test_records import batch, make_record

SCHEMA = {
    "features": [
        {"name": "sepal_length", "kind": "numerical"},
        {"name": "color", "kind": "categorical", "segment": True},
    ],
    "prediction": {"kind": "classification", "classes": ["setosa", "virginica"]},
}


def reference_frame(rows: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sepal_length": [5.0 + i % 5 for i in range(rows)],
            "color": ["red", "blue"] * (rows // 2),
            "target": ["setosa", "virginica"] * (rows // 2),
        }
    )


def test_registering_a_model_then_refining_it(client: TestClient) -> None:
    created = client.post(
        "/v1/models",
        json={"name": "iris", "schema": SCHEMA, "versions": [{"version": "v1"}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["schema_source"] == "registered"
    assert created.json()["versions"][0] == {
        "version": "v1",
        "role": "champion",
        "url": None,
        "provenance": None,
    }
    updated = client.post(
        "/v1/models",
        json={"name": "iris", "versions": [{"version": "v2", "role": "champion"}]},
    )
    assert updated.status_code == 200
    roles = {v["version"]: v["role"] for v in updated.json()["versions"]}
    assert roles == {"v1": "retired", "v2": "champion"}, "a new champion retires the old one"
    assert [m["name"] for m in client.get("/v1/models").json()] == ["iris"]


def test_records_keep_a_registered_schema_and_are_counted_per_version_and_variant(
    client: TestClient,
) -> None:
    client.post("/v1/models", json={"name": "iris", "schema": SCHEMA})
    records = [make_record(i) for i in range(6)]
    records += [make_record(i, variant="shadow", version="v2") for i in range(2)]
    records.append(make_record(99, inputs={"brand_new": 1.0}))
    client.post("/v1/records", json=batch(records))
    model = client.get("/v1/models/iris").json()
    assert model["record_count"] == 9
    assert model["records_by_version"] == {"v1": {"champion": 7}, "v2": {"shadow": 2}}
    assert [f["name"] for f in model["schema"]["features"]] == ["sepal_length", "color"]


def test_an_unknown_model_is_a_404_naming_it(client: TestClient) -> None:
    response = client.get("/v1/models/nope")
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


def test_a_bad_registration_gets_a_422_naming_the_field(client: TestClient) -> None:
    bad = {**SCHEMA, "features": [*SCHEMA["features"], {"name": "color", "kind": "numerical"}]}
    response = client.post("/v1/models", json={"name": "iris", "schema": bad})
    assert response.status_code == 422
    assert "declared twice" in response.json()["detail"]
    assert client.get("/v1/models").json() == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_reference_upload_infers_the_schema_of_an_unknown_model(
    client: TestClient, fmt: str
) -> None:
    frame = reference_frame()
    if fmt == "csv":
        body, ctype = frame.to_csv(index=False).encode(), "text/csv"
    else:
        sink = io.BytesIO()
        frame.to_parquet(sink)
        body, ctype = sink.getvalue(), "application/vnd.apache.parquet"
    response = client.put(
        "/v1/models/iris/reference?label_column=target",
        content=body,
        headers={"content-type": ctype},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 50
    model = client.get("/v1/models/iris").json()
    assert {f["name"]: f["kind"] for f in model["schema"]["features"]} == {
        "sepal_length": "numerical",
        "color": "categorical",
    }
    assert model["schema"]["prediction"]["classes"] == ["setosa", "virginica"]
    assert model["reference"]["rows"] == 50
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    from driftloop.store.reference import load_reference
    from driftloop.store.registry import get_model

    with state.sessions() as session:
        loaded = load_reference(session, get_model(session, "iris"))
    pd.testing.assert_frame_equal(loaded, frame)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"PAR1 not really parquet", "cannot read the dataset as Parquet"),
        (b"a,b\n", "no rows"),
    ],
    ids=["empty", "broken-parquet", "header-only"],
)
def test_a_bad_reference_gets_a_422_and_stores_nothing(
    client: TestClient, body: bytes, message: str
) -> None:
    response = client.put("/v1/models/iris/reference", content=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert client.get("/v1/models").json() == []


def test_a_reference_missing_declared_features_is_refused(client: TestClient) -> None:
    client.post("/v1/models", json={"name": "iris", "schema": SCHEMA})
    frame = reference_frame().drop(columns=["color"])
    response = client.put(
        "/v1/models/iris/reference",
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 422
    assert "['color']" in response.json()["detail"]
    assert client.get("/v1/models/iris").json()["reference"] is None


def test_a_dotted_section_goes_inside_its_parent(client: TestClient) -> None:
    """``performance.estimated`` (the estimation) sits beside feedback's realized
    ``performance.windows``; a dotted section whose parent is absent makes the parent."""
    client.post("/v1/models", json={"name": "iris", "schema": SCHEMA})
    sections = client.app.state.driftloop.model_sections  # type: ignore[attr-defined]
    sections["performance.guess"] = lambda _session, model: {"of": model.name}
    sections["lonely.child"] = lambda _session, _model: 1
    try:
        view = client.get("/v1/models/iris").json()
    finally:
        del sections["performance.guess"], sections["lonely.child"]
    assert "windows" in view["performance"]
    assert view["performance"]["guess"] == {"of": "iris"}
    assert view["lonely"] == {"child": 1}
    assert "performance.guess" not in view
