"""The drift component in the monitor: ingest hook, evaluation job, sections, metrics."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from sqlalchemy import func, select

from driftloop.monitor.drift import DriftConfig, Reference, compare_frame
from driftloop.settings import DriftOverride
from driftloop.store import DriftProfile, OodRecord

CATEGORIES = ["red", "green", "blue"]


def _reference(rng: np.random.Generator, n: int = 2000) -> bytes:
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "z": rng.normal(5, 2, n),
            "color": rng.choice(CATEGORIES, n, p=[0.5, 0.3, 0.2]),
            "prediction": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
        }
    )
    sink = io.BytesIO()
    frame.to_parquet(sink)
    return sink.getvalue()


def _records(
    rng: np.random.Generator, n: int, *, shift: float, start: int = 0
) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    x = rng.normal(shift, 1, n)
    z = rng.normal(5, 2, n)
    colors = rng.choice(CATEGORIES, n, p=[0.5, 0.3, 0.2])
    out = []
    for i in range(n):
        out.append(
            {
                "request_id": f"r-{start + i}",
                "model": "churn",
                "version": "v1",
                "timestamp": now,
                "inputs": {"x": float(x[i]), "z": float(z[i]), "color": str(colors[i])},
                "outputs": {"prediction": "yes" if x[i] > 0.5 else "no"},
            }
        )
    return out


def _post(client: TestClient, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def loaded(client: TestClient) -> tuple[TestClient, list[dict[str, Any]]]:
    rng = np.random.default_rng(42)
    response = client.put(
        "/v1/models/churn/reference?prediction_column=prediction",
        content=_reference(rng),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 200, response.text
    records = _records(rng, 600, shift=1.0)
    records[0]["inputs"]["x"] = 1e6  # far outside the reference
    records[1]["inputs"]["color"] = "purple"  # a category the reference never saw
    records[2]["inputs"]["z"] = "oops"  # a type error
    records[3]["inputs"].pop("z")  # missing
    _post(client, records[:300])
    _post(client, records[300:])
    return client, records


def _state(client: TestClient) -> Any:
    return client.app.state.driftloop  # type: ignore[attr-defined]


def test_the_job_flags_the_shifted_feature_and_shows_it_on_the_model(
    loaded: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, _ = loaded
    _state(client).jobs.run_job("drift", _state(client))
    model = client.get("/v1/models/churn").json()
    [result] = model["drift"]
    assert (result["version"], result["variant"], result["records"]) == ("v1", "champion", 600)
    features = {f["name"]: f for f in result["reference"]["features"]}
    assert features["x"]["drifted"]
    assert features["x"]["method"] == "ks"
    assert not features["z"]["drifted"]
    assert not features["color"]["drifted"]
    assert result["reference"]["drifted_share"] == pytest.approx(1 / 3)
    assert result["prediction"]["reference"]["drifted"]  # predictions follow the shifted x
    [quality] = model["quality"]
    assert quality["ood_records_ratio"] == pytest.approx(3 / 600)
    assert quality["features"]["z"]["missing_ratio"] == pytest.approx(1 / 600)
    assert quality["features"]["z"]["type_errors_ratio"] == pytest.approx(1 / 600)
    assert quality["features"]["color"]["unseen_ratio"] == pytest.approx(1 / 600)
    assert quality["features"]["x"]["out_of_range_ratio"] > 0


def test_flagged_records_are_kept_with_the_reason(
    loaded: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, _ = loaded
    with _state(client).sessions() as session:
        rows = {r.request_id: r.features["names"] for r in session.scalars(select(OodRecord))}
    assert rows == {"r-0": ["x"], "r-1": ["color"], "r-2": ["z"]}


def test_metrics_come_from_the_latest_results(
    loaded: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, _ = loaded
    state = _state(client)
    state.jobs.run_job("drift", state)
    registry = state.registry
    key = {"model": "churn", "version": "v1", "variant": "champion"}
    assert (
        registry.get_sample_value(
            "driftloop_feature_drifted", {**key, "feature": "x", "method": "ks"}
        )
        == 1.0
    )
    assert (
        registry.get_sample_value(
            "driftloop_feature_drifted", {**key, "feature": "color", "method": "chi2"}
        )
        == 0.0
    )
    assert registry.get_sample_value("driftloop_drifted_features_ratio", key) == pytest.approx(
        1 / 3
    )
    assert registry.get_sample_value("driftloop_ood_records_ratio", key) == pytest.approx(3 / 600)
    assert registry.get_sample_value("driftloop_drift_window_records", key) == 600
    text = client.get("/metrics").text
    assert 'driftloop_feature_drift_effect_size{feature="x",method="ks",model="churn"' in text
    assert "request_id" not in generate_latest(registry).decode()


def test_resent_records_are_not_counted_twice(
    loaded: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, records = loaded
    body = _post(client, records[:300])
    assert body["duplicates"] == 300
    with _state(client).sessions() as session:
        counts = session.execute(
            select(DriftProfile.grain, func.sum(DriftProfile.records)).group_by(DriftProfile.grain)
        ).all()
    assert dict(counts) == {"minute": 600, "hour": 600, "day": 600}


def test_profiles_agree_with_the_raw_path_on_the_same_window(
    loaded: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, records = loaded
    _state(client).jobs.run_job("drift", _state(client))
    online = {
        f["name"]: f
        for f in client.get("/v1/models/churn").json()["drift"][0]["reference"]["features"]
    }
    reference = pd.read_parquet(io.BytesIO(_reference(np.random.default_rng(42))))
    current = pd.DataFrame([r["inputs"] for r in records])
    current["z"] = pd.to_numeric(current["z"], errors="coerce")
    raw = compare_frame(
        Reference.from_frame(reference[["x", "z", "color"]]), current, DriftConfig()
    )
    for feature in raw.features:
        binned = online[feature.name]
        assert binned["drifted"] == feature.drifted
        if feature.kind.value == "categorical":
            assert binned["statistic"] == pytest.approx(feature.statistic, rel=1e-12)
        else:
            # Binned KS differs by at most the largest share one bin holds (1/100 of the
            # reference, or of the window), here about 2%.
            assert abs(binned["statistic"] - feature.statistic) <= 0.025
            assert binned["effect_size"] == pytest.approx(feature.effect_size, abs=0.03)


def test_a_model_without_reference_is_skipped_not_failed(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    _post(client, _records(rng, 20, shift=0.0))
    _state(client).jobs.run_job("drift", _state(client))
    model = client.get("/v1/models/churn").json()
    assert model["drift"] == []
    assert model["quality"] == []


def test_per_model_settings_override_the_defaults(settings: Any) -> None:
    from driftloop.server import create_app

    strict = settings.model_copy(
        update={
            "drift": settings.drift.model_copy(
                update={"models": {"churn": DriftOverride(materiality=5.0, window_minutes=30)}}
            )
        }
    )
    app = create_app(strict)
    try:
        with TestClient(app) as client:
            rng = np.random.default_rng(42)
            client.put(
                "/v1/models/churn/reference",
                content=_reference(rng),
                headers={"content-type": "application/vnd.apache.parquet"},
            )
            _post(client, _records(rng, 300, shift=1.0))
            _state(client).jobs.run_job("drift", _state(client))
            [result] = client.get("/v1/models/churn").json()["drift"]
    finally:
        app.state.driftloop.engine.dispose()
    assert result["config"]["materiality"] == 5.0
    assert result["window"]["minutes"] == 30
    assert not any(f["drifted"] for f in result["reference"]["features"])
