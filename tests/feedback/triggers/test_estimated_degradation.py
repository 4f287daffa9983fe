"""The "estimated degradation" retraining condition: the champion's estimated metric (no labels
yet) confidently below the reference's realized value by more than a threshold. The estimates
come from the monitor's estimation, handed to feedback by the composition root."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pandas as pd
import pytest

from driftloop.clock import FrozenClock
from driftloop.feedback.triggers.conditions import estimated_degradation
from driftloop.feedback.triggers.policy import EstimatedDegradationRule
from driftloop.settings import EstimationSettings, Settings
from driftloop.store.registry import get_model
from tests.feedback.triggers.conftest import Sent
from tests.feedback.webhooks.conftest import BOTH_DATABASES, Monitor, open_monitor
from tests.scored import calibrated_classifier

MODEL = "scored"


def open_scored(settings: Settings, clock: FrozenClock, sent: Sent) -> Iterator[Monitor]:
    """The monitor with a scored classifier and its reference (estimates never reused)."""
    fresh = settings.model_copy(update={"estimation": EstimationSettings(**ESTIMATION)})
    for monitor in open_monitor(fresh, clock, httpx.MockTransport(sent)):
        body = {
            "name": MODEL,
            "schema": {
                "features": [{"name": "x", "kind": "numerical"}],
                "prediction": {"kind": "classification", "classes": ["a", "b"]},
                "label_column": "label",
            },
            "versions": [{"version": "v1"}],
        }
        assert monitor.client.post("/v1/models", json=body).status_code == 201
        response = monitor.client.put(
            f"/v1/models/{MODEL}/reference",
            params={"score_columns": "p_a,p_b"},
            content=REFERENCE.to_csv(index=False).encode(),
            headers={"content-type": "text/csv"},
        )
        assert response.status_code == 200, response.text
        yield monitor


ESTIMATION: dict[str, Any] = {"ttl_seconds": 0}
REFERENCE = calibrated_classifier(600, 0)
REFERENCE_ACCURACY = float((REFERENCE["prediction"] == REFERENCE["label"]).mean())


@pytest.fixture
def monitor(webhook_settings: Settings, frozen_clock: FrozenClock, sent: Sent) -> Iterator[Monitor]:
    yield from open_scored(webhook_settings, frozen_clock, sent)


def send(monitor: Monitor, frame: pd.DataFrame) -> None:
    """Log the frame's rows (with their class scores, no labels) a minute before the clock."""
    ts = (monitor.clock.now() - timedelta(seconds=60)).isoformat()
    records = [
        {
            "request_id": uuid.uuid4().hex,
            "model": MODEL,
            "version": "v1",
            "variant": "champion",
            "timestamp": ts,
            "inputs": {"x": row.x},
            "outputs": {
                "prediction": row.prediction,
                "probabilities": {"a": row.p_a, "b": row.p_b},
            },
        }
        for row in frame.itertuples()
    ]
    response = monitor.client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    )
    assert response.status_code == 200, response.text


def set_policy(monitor: Monitor, **policy: Any) -> None:
    response = monitor.client.put(f"/v1/models/{MODEL}/retraining", json=policy)
    assert response.status_code == 200, response.text


def evaluate(monitor: Monitor) -> list[dict[str, Any]]:
    """One run of the retraining job; the triggers it fired."""
    before = {t["id"] for t in triggers(monitor)}
    monitor.state.jobs.run_job("retrain.evaluate", monitor.state)
    return [t for t in triggers(monitor) if t["id"] not in before]


def triggers(monitor: Monitor) -> list[dict[str, Any]]:
    response = monitor.client.get(f"/v1/models/{MODEL}/triggers")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


@BOTH_DATABASES
def test_an_estimated_drop_past_the_threshold_fires_once_with_its_evidence(
    monitor: Monitor, sent: Sent
) -> None:
    set_policy(monitor, estimated_degradation={"threshold": 0.1}, cooldown_seconds=60)
    send(monitor, calibrated_classifier(300, 1, spread=0.1))  # near the boundary: about a coin toss
    (fired,) = evaluate(monitor)
    assert fired["reason"] == "estimated_degradation"
    evidence = fired["evidence"]
    assert evidence["estimated"] is True
    assert (evidence["metric"], evidence["variant"], evidence["group"]) == (
        "accuracy",
        "champion",
        "v1/champion",
    )
    assert evidence["reference"] == pytest.approx(REFERENCE_ACCURACY)
    low, high = evidence["interval"]
    assert evidence["limit"] == pytest.approx(REFERENCE_ACCURACY - 0.1)
    assert low <= evidence["estimate"] <= high < evidence["limit"]
    assert evidence["rows"] == 300
    assert (
        monitor.metric(
            "driftloop_retrain_triggers_total", model=MODEL, reason="estimated_degradation"
        )
        == 1
    )
    # The receiver is told why, with the estimate's evidence.
    monitor.deliver()
    (body,) = [json.loads(r.content) for r in sent.requests]
    assert (body["reason"], body["trigger_id"]) == ("estimated_degradation", fired["id"])
    assert body["evidence"]["interval"] == [low, high]
    # The section the condition read is the model's own.
    estimated = monitor.client.get(f"/v1/models/{MODEL}").json()["performance"]["estimated"]
    (group,) = estimated["groups"]
    assert group["metrics"]["accuracy"]["upper"] == pytest.approx(high)
    # One incident, one trigger: still holding after the cooldown, it does not fire again.
    monitor.clock.advance(120)
    send(monitor, calibrated_classifier(300, 2, spread=0.1))
    assert evaluate(monitor) == []


def test_an_estimate_like_the_reference_does_not_fire(monitor: Monitor) -> None:
    set_policy(monitor, estimated_degradation={"threshold": 0.1})
    send(monitor, calibrated_classifier(300, 3))  # the reference's own distribution
    assert evaluate(monitor) == []


def test_a_threshold_the_interval_does_not_clear_does_not_fire(monitor: Monitor) -> None:
    # The estimate is far below the reference, but not by a whole 0.5 with its interval.
    set_policy(monitor, estimated_degradation={"threshold": 0.5})
    send(monitor, calibrated_classifier(300, 1, spread=0.1))
    assert evaluate(monitor) == []


def test_the_condition_is_off_unless_configured(monitor: Monitor) -> None:
    set_policy(monitor, degradation={"below": 0.9}, new_labels=10_000)
    send(monitor, calibrated_classifier(300, 1, spread=0.1))
    assert evaluate(monitor) == []


def test_without_the_estimation_it_never_holds(
    webhook_settings: Settings, frozen_clock: FrozenClock, sent: Sent
) -> None:
    ESTIMATION["enabled"] = False
    try:
        for monitor in open_scored(webhook_settings, frozen_clock, sent):
            set_policy(monitor, estimated_degradation={"threshold": 0.1})
            send(monitor, calibrated_classifier(300, 1, spread=0.1))
            assert evaluate(monitor) == []
    finally:
        del ESTIMATION["enabled"]


def test_a_loss_degrades_upwards(monitor: Monitor) -> None:
    """For MAE and RMSE the interval's lower bound must pass reference + threshold."""

    def section(estimate: float, lower: float, upper: float) -> Any:
        metrics = {"mae": {"estimate": estimate, "lower": lower, "upper": upper}}
        group = {"version": "v1", "variant": "champion", "rows": 50, "task": "regression"}
        return lambda _s, _m: {"groups": [{**group, "metrics": metrics, "reference": {"mae": 1.0}}]}

    rule = EstimatedDegradationRule(threshold=0.5)
    with monitor.state.sessions() as session:
        model = get_model(session, MODEL)
        worse = estimated_degradation(session, model, rule, section(2.0, 1.6, 2.4))
        assert worse is not None
        assert (worse.evidence["metric"], worse.evidence["limit"]) == ("mae", 1.5)
        assert estimated_degradation(session, model, rule, section(2.0, 1.4, 2.6)) is None
        # Lower is better for a loss: an estimate far below the reference is no degradation.
        assert estimated_degradation(session, model, rule, section(0.2, 0.1, 0.3)) is None
        assert estimated_degradation(session, model, rule, None) is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({}, "threshold"),
        ({"threshold": -0.1}, "greater than or equal to 0"),
        ({"threshold": 0.1, "variant": "other"}, "variant"),
        ({"threshold": 0.1, "margin": 1}, "margin"),
    ],
)
def test_bad_rules_are_refused(monitor: Monitor, rule: dict[str, Any], message: str) -> None:
    response = monitor.client.put(
        f"/v1/models/{MODEL}/retraining", json={"estimated_degradation": rule}
    )
    assert response.status_code == 422
    assert message in response.text
