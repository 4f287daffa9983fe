"""References per version (issue 17): a version brings its own reference, drift of a version is
against it, a promotion moves the default, mismatched columns are refused unless replaced, and
``label_column`` / ``prediction_column`` are honoured with a registered schema too."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from driftloop.store.reference import latest_reference, load_reference, reference_for
from driftloop.store.registry import get_model


def _parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink)
    return sink.getvalue()


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"x": rng.normal(shift, 1, n), "color": rng.choice(["red", "blue"], n, p=[0.6, 0.4])}
    )


def _put(client: TestClient, frame: pd.DataFrame, query: str = "") -> Any:
    return client.put(
        f"/v1/models/churn/reference{query}",
        content=_parquet(frame),
        headers={"content-type": "application/vnd.apache.parquet"},
    )


def _records(frame: pd.DataFrame, version: str, variant: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "request_id": f"{version}-{variant}-{i}",
            "model": "churn",
            "version": version,
            "variant": variant,
            "timestamp": now,
            "inputs": {"x": float(row.x), "color": str(row.color)},
            "outputs": {"prediction": "yes"},
        }
        for i, row in enumerate(frame.itertuples())
    ]


def _state(client: TestClient) -> Any:
    return client.app.state.driftloop  # type: ignore[attr-defined]


def test_each_version_is_compared_with_its_own_reference_and_promotion_moves_the_default(
    client: TestClient,
) -> None:
    rng = np.random.default_rng(17)
    assert _put(client, _frame(rng, 3000, 0.0)).status_code == 200
    client.post(
        "/v1/models",
        json={
            "name": "churn",
            "versions": [{"version": "v1"}, {"version": "v2", "role": "challenger"}],
        },
    )
    # v2 was trained on shifted data: its own reference says so.
    response = _put(client, _frame(rng, 3000, 1.5), "?version=v2")
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "v2"
    serving = _frame(rng, 400, 1.5)  # both versions see the shifted traffic
    batch = _records(serving, "v1", "champion") + _records(serving, "v2", "challenger")
    posted = client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "t", "records": batch}
    )
    assert posted.status_code == 200, posted.text
    _state(client).jobs.run_job("drift", _state(client))
    results = {r["version"]: r for r in client.get("/v1/models/churn").json()["drift"]}
    v1 = {f["name"]: f for f in results["v1"]["reference"]["features"]}
    v2 = {f["name"]: f for f in results["v2"]["reference"]["features"]}
    assert v1["x"]["drifted"], "v1 is measured against the model's reference"
    assert not v2["x"]["drifted"], "v2 is measured against the data it was trained on"
    with _state(client).sessions() as session:
        model = get_model(session, "churn")
        default = latest_reference(session, model)
        assert default is not None
        assert default.version is None
        own = reference_for(session, model, "v2")
        assert own is not None
        assert own.version == "v2"
    client.post(
        "/v1/models", json={"name": "churn", "versions": [{"version": "v2", "role": "champion"}]}
    )
    with _state(client).sessions() as session:
        model = get_model(session, "churn")
        default = latest_reference(session, model)
        assert default is not None
        assert default.version == "v2"
        assert reference_for(session, model, "v9") is not None
        assert reference_for(session, model, "v9").version == "v2"  # type: ignore[union-attr]


def test_a_reference_with_other_columns_is_refused_unless_replaced(client: TestClient) -> None:
    rng = np.random.default_rng(1)
    assert _put(client, _frame(rng, 200, 0.0)).status_code == 200
    unrelated = pd.DataFrame({"height": rng.normal(size=200), "weight": rng.normal(size=200)})
    refused = _put(client, unrelated)
    assert refused.status_code == 422
    assert "lacks the schema's features ['x', 'color']" in refused.json()["detail"]
    assert "replace=true" in refused.json()["detail"]
    schema = client.get("/v1/models/churn").json()["schema"]
    assert [f["name"] for f in schema["features"]] == ["x", "color"]
    replaced = _put(client, unrelated, "?replace=true")
    assert replaced.status_code == 200, replaced.text
    assert [f["name"] for f in replaced.json()["schema"]["features"]] == ["height", "weight"]


def test_label_and_prediction_columns_are_honoured_with_a_registered_schema(
    client: TestClient,
) -> None:
    schema = {
        "features": [{"name": "x", "kind": "numerical"}, {"name": "color", "kind": "categorical"}],
        "prediction": {"kind": "classification", "classes": ["no", "yes"]},
    }
    assert client.post("/v1/models", json={"name": "churn", "schema": schema}).status_code == 201
    rng = np.random.default_rng(2)
    frame = _frame(rng, 100, 0.0)
    frame["truth"] = rng.choice(["no", "yes"], 100)
    frame["model_said"] = rng.choice(["no", "yes"], 100)
    response = _put(client, frame, "?label_column=truth&prediction_column=model_said")
    assert response.status_code == 200, response.text
    assert response.json()["schema"]["label_column"] == "truth"
    with _state(client).sessions() as session:
        stored = load_reference(session, get_model(session, "churn"))
    assert stored is not None
    # Stored under the name records carry predictions by: the baseline of prediction drift.
    assert list(stored["prediction"]) == list(frame["model_said"])
    assert "truth" in stored.columns
