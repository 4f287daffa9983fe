"""The estimation in the monitor: references with scores, every record of the window (labeled or
not), ``performance.estimated`` in ``GET /v1/models/{name}`` and the Prometheus series, on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from driftloop.server import create_app
from driftloop.settings import EstimationSettings, Settings
from tests.scored import calibrated_classifier

ROWS = 160


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The monitor with estimates recomputed on every read (no reuse between a test's steps)."""
    app = create_app(settings.model_copy(update={"estimation": EstimationSettings(ttl_seconds=0)}))
    with TestClient(app) as test_client:
        yield test_client
    app.state.driftloop.engine.dispose()


def register(client: TestClient, name: str, prediction: dict[str, Any]) -> None:
    body = {
        "name": name,
        "schema": {
            "features": [{"name": "x", "kind": "numerical"}],
            "prediction": prediction,
            "label_column": "label",
        },
        "versions": [{"version": "v1"}],
    }
    response = client.post("/v1/models", json=body)
    assert response.status_code in (200, 201), response.text


def upload(client: TestClient, name: str, frame: pd.DataFrame, **params: str) -> dict[str, Any]:
    response = client.put(
        f"/v1/models/{name}/reference",
        params=params,
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def send(client: TestClient, name: str, frame: pd.DataFrame, *, scores: bool = True) -> list[str]:
    """Send the frame's rows as records of the last minutes; returns their request ids."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in range(len(frame))]
    records = []
    for i, (rid, row) in enumerate(zip(ids, frame.itertuples(), strict=True)):
        outputs: dict[str, Any] = {"prediction": row.prediction}
        if scores and hasattr(row, "p_a"):
            outputs["probabilities"] = {"a": row.p_a, "b": row.p_b}
        records.append(
            {
                "request_id": rid,
                "model": name,
                "version": "v1",
                "variant": "champion",
                "timestamp": (now - timedelta(seconds=300 - i)).isoformat(),
                "inputs": {"x": row.x},
                "outputs": outputs,
                "latency_ms": 1.0,
                "status": 200,
            }
        )
    response = client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    )
    assert response.status_code == 200, response.text
    return ids


def label(client: TestClient, ids: list[str], labels: list[Any]) -> None:
    body = [{"request_id": r, "label": v} for r, v in zip(ids, labels, strict=True)]
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 200, response.text


def estimated(client: TestClient, name: str) -> dict[str, Any]:
    response = client.get(f"/v1/models/{name}")
    assert response.status_code == 200, response.text
    section: dict[str, Any] = response.json()["performance"]["estimated"]
    return section


def sample(client: TestClient, family: str, **labels: str) -> float | None:
    registry = client.app.state.driftloop.registry  # type: ignore[attr-defined]
    value: float | None = registry.get_sample_value(family, labels)
    return value


def test_a_classifier_is_estimated_before_labels_and_reconciled_when_some_arrive(
    client: TestClient,
) -> None:
    register(
        client, "clf", {"kind": "classification", "classes": ["a", "b"], "field": "prediction"}
    )
    reference = calibrated_classifier(600, 0)
    stored = upload(client, "clf", reference, score_columns="p_a,p_b")
    assert stored["score_columns"] == ["score:a", "score:b"]
    # The scores are not features of the schema.
    assert [f["name"] for f in stored["schema"]["features"]] == ["x"]
    window = calibrated_classifier(ROWS, 1)
    ids = send(client, "clf", window)

    section = estimated(client, "clf")
    assert section["reason"] is None
    (group,) = section["groups"]
    assert (group["version"], group["variant"], group["rows"]) == ("v1", "champion", ROWS)
    accuracy = group["metrics"]["accuracy"]
    assert 0 <= accuracy["lower"] < accuracy["estimate"] < accuracy["upper"] <= 1
    assert {"roc_auc", "f1", "precision:a", "recall:b"} <= set(group["metrics"])
    assert group["reconciliation"] is None
    # The baseline: the reference's own predictions (here the top score) against its labels.
    baseline = float((reference["prediction"] == reference["label"]).mean())
    assert group["reference"]["accuracy"] == pytest.approx(baseline)
    # Realized performance keeps its place beside the estimate.
    assert "windows" in client.get("/v1/models/clf").json()["performance"]
    key = {"model": "clf", "version": "v1", "variant": "champion", "metric": "accuracy"}
    for bound in ("estimate", "lower", "upper"):
        assert sample(client, "driftloop_performance_estimated", **key, bound=bound) == (
            pytest.approx(accuracy[bound])
        )
    assert sample(client, "driftloop_performance_estimate_error", **key) is None

    half = ROWS // 2
    label(client, ids[:half], window["label"].iloc[:half].tolist())
    (group,) = estimated(client, "clf")["groups"]
    reconciliation = group["reconciliation"]
    assert reconciliation["rows"] == half
    realized = float((window["prediction"] == window["label"]).iloc[:half].mean())
    assert reconciliation["realized"]["accuracy"] == pytest.approx(realized)
    error = reconciliation["metrics"]["accuracy"]["estimate"] - realized
    assert reconciliation["error"]["accuracy"] == pytest.approx(error)
    assert sample(client, "driftloop_performance_estimate_error", **key) == pytest.approx(error)
    # The estimate over every row of the window is still there, beside the reconciliation.
    assert group["rows"] == ROWS
    assert group["metrics"]["accuracy"]["estimate"] is not None


def test_a_model_without_scores_says_why_and_exports_no_numbers(client: TestClient) -> None:
    register(client, "bare", {"kind": "classification", "classes": ["a", "b"]})
    upload(client, "bare", calibrated_classifier(300, 2).drop(columns=["p_a", "p_b"]))
    send(client, "bare", calibrated_classifier(50, 3), scores=False)
    section = estimated(client, "bare")
    assert "no class scores" in section["reason"]
    assert "score_columns" in section["reason"]
    assert section["groups"] == []

    # A reference with scores, but records that log none.
    upload(client, "bare", calibrated_classifier(300, 2), score_columns="p_a,p_b")
    section = estimated(client, "bare")
    (group,) = section["groups"]
    assert "outputs.probabilities" in group["reason"]
    assert "metrics" not in group
    assert section["reason"] == group["reason"]
    key = {"model": "bare", "version": "v1", "variant": "champion", "metric": "accuracy"}
    assert sample(client, "driftloop_performance_estimated", **key, bound="estimate") is None


def test_score_columns_must_match_the_classes(client: TestClient) -> None:
    register(client, "three", {"kind": "classification", "classes": ["a", "b", "c"]})
    response = client.put(
        "/v1/models/three/reference",
        params={"score_columns": "p_a,p_b"},
        content=calibrated_classifier(200, 4).to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 422
    assert "2 score columns for 3 classes" in response.json()["detail"]


def test_a_regressor_gets_mae_and_rmse_estimates(client: TestClient) -> None:
    register(client, "reg", {"kind": "regression"})
    rng = np.random.default_rng(5)

    def data(n: int) -> pd.DataFrame:
        x = rng.uniform(-2, 2, n)
        predicted = 3 * x
        return pd.DataFrame(
            {"x": x, "prediction": predicted, "label": predicted + rng.normal(0, 1 + abs(x), n)}
        )

    upload(client, "reg", data(400), prediction_column="prediction")
    window = data(ROWS)
    send(client, "reg", window)
    (group,) = estimated(client, "reg")["groups"]
    assert set(group["metrics"]) == {"mae", "rmse"}
    for metric in ("mae", "rmse"):
        value = group["metrics"][metric]
        assert 0 <= value["lower"] < value["estimate"] < value["upper"]
        key = {"model": "reg", "version": "v1", "variant": "champion", "metric": metric}
        assert sample(
            client, "driftloop_performance_estimated", **key, bound="estimate"
        ) == pytest.approx(value["estimate"])
    # The noise's mean absolute value is about 1.9: the estimate is in its neighbourhood.
    assert 1.0 < group["metrics"]["mae"]["estimate"] < 3.0


def test_window_rows_returns_unlabeled_records_newest_first_within_the_limit(
    client: TestClient,
) -> None:
    from driftloop.feedback import labeled_rows, window_rows
    from driftloop.store.registry import get_model

    register(client, "rows", {"kind": "classification", "classes": ["a", "b"]})
    frame = calibrated_classifier(20, 6)
    ids = send(client, "rows", frame)
    label(client, ids[:5], ["a"] * 5)
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        model = get_model(session, "rows")
        every = window_rows(session, model)
        newest = window_rows(session, model, limit=8)
        joined = labeled_rows(session, model)
    assert len(joined) == 5
    assert len(every) == 20
    assert every["label"].notna().sum() == 5
    assert sorted(newest["request_id"]) == sorted(ids[-8:])
    assert newest["label"].isna().all()
    assert {"score:a", "score:b", "prediction", "x"} <= set(every.columns)
    first = every.set_index("request_id").loc[ids[0]]
    assert [first["score:a"], first["score:b"]] == pytest.approx([frame.p_a[0], frame.p_b[0]])


def test_estimation_can_be_turned_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"estimation": EstimationSettings(enabled=False)}))
    with TestClient(app) as client:
        register(client, "off", {"kind": "classification", "classes": ["a", "b"]})
        assert "estimated" not in client.get("/v1/models/off").json()["performance"]
    app.state.driftloop.engine.dispose()
