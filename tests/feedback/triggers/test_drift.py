"""The drift policy: dataset drift or a named feature's drift fires once per incident.

The first test runs the drift component for real (reference upload, shifted records, its
evaluation job). The others put a stand-in ``latest_drift`` in place to drive the rule's
branches precisely (named features, an incident closing and reopening).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from driftloop.monitor import evaluation
from tests.conftest import need
from tests.feedback.triggers.conftest import evaluate, send_records, set_policy
from tests.feedback.webhooks.conftest import Monitor


def upload_reference(monitor: Monitor, rows: int = 300) -> None:
    frame = pd.DataFrame(
        {
            "sepal_length": [5.0 + (i % 7) * 0.3 for i in range(rows)],
            "color": ["red", "blue"] * (rows // 2),
        }
    )
    response = monitor.client.put(
        "/v1/models/iris/reference",
        content=frame.to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text


def test_real_dataset_drift_fires_once_and_stays_quiet(monitor: Monitor) -> None:
    need(
        hasattr(evaluation, "latest_drift"),
        "driftloop.monitor.evaluation.latest_drift is not built yet",
    )
    set_policy(monitor, drift={"dataset": True}, cooldown_seconds=600)
    upload_reference(monitor)
    send_records(monitor, 300, shift=5.0)
    monitor.state.jobs.run_job("drift", monitor.state)
    (fired,) = evaluate(monitor)
    assert fired["reason"] == "drift"
    assert fired["evidence"]["dataset_drift"] is True
    assert "sepal_length" in fired["evidence"]["drifted_features"]
    monitor.clock.advance(60)
    monitor.state.jobs.run_job("drift", monitor.state)
    assert evaluate(monitor) == []
    monitor.clock.advance(600)
    monitor.state.jobs.run_job("drift", monitor.state)
    assert evaluate(monitor) == []  # cooldown over, the same incident still open


class StandIn:
    """A ``latest_drift`` whose answer the test sets."""

    def __init__(self) -> None:
        self.result: dict[str, Any] | None = None

    def __call__(self, _session: object, _model: object) -> dict[str, Any] | None:
        return self.result


@pytest.fixture
def drift(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    stand_in = StandIn()
    monkeypatch.setattr(evaluation, "latest_drift", stand_in, raising=False)
    return stand_in


def result(dataset: bool, drifted: list[str]) -> dict[str, Any]:
    features = [
        {"name": n, "drifted": n in drifted, "p_value": 0.001 if n in drifted else 0.6}
        for n in ("sepal_length", "color")
    ]
    return {
        "dataset_drift": dataset,
        "drifted_share": len(drifted) / 2,
        "features": features,
        "evaluated_at": "2026-01-01T00:00:00+00:00",
    }


def test_a_named_feature_fires_without_dataset_drift(monitor: Monitor, drift: StandIn) -> None:
    set_policy(monitor, drift={"dataset": False, "features": ["color"]}, cooldown_seconds=60)
    send_records(monitor, 10)
    drift.result = result(False, ["sepal_length"])
    assert evaluate(monitor) == []  # a feature drifted, but not a watched one
    drift.result = result(False, ["color"])
    (fired,) = evaluate(monitor)
    assert fired["evidence"]["watched_features"] == ["color"]
    assert fired["evidence"]["features"][1]["p_value"] == 0.001


def test_a_drift_incident_fires_once_closes_and_reopens(monitor: Monitor, drift: StandIn) -> None:
    set_policy(monitor, drift={"dataset": True}, cooldown_seconds=60)
    send_records(monitor, 10)
    drift.result = result(True, ["sepal_length", "color"])
    assert [t["reason"] for t in evaluate(monitor)] == ["drift"]
    monitor.clock.advance(30)
    assert evaluate(monitor) == []  # in cooldown
    monitor.clock.advance(3600)
    assert evaluate(monitor) == []  # cooldown over; same incident
    drift.result = result(False, [])
    assert evaluate(monitor) == []  # the incident closes
    drift.result = None
    assert evaluate(monitor) == []  # no evaluation at all: nothing to say
    drift.result = result(True, ["color"])
    assert [t["reason"] for t in evaluate(monitor)] == ["drift"]  # a new incident


def test_a_failing_drift_source_neither_fires_nor_closes_an_incident(
    monitor: Monitor, drift: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_policy(monitor, drift={"dataset": True}, cooldown_seconds=60)
    send_records(monitor, 10)
    drift.result = result(True, ["color"])
    assert len(evaluate(monitor)) == 1

    def broken(_session: object, _model: object) -> None:
        raise RuntimeError("drift store unavailable")

    monkeypatch.setattr(evaluation, "latest_drift", broken)
    monitor.clock.advance(3600)
    assert evaluate(monitor) == []
    monkeypatch.setattr(evaluation, "latest_drift", drift)
    assert evaluate(monitor) == []  # still the same incident: no second trigger
