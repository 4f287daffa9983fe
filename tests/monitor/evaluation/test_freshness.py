"""Freshness (issue 17): results carry their age, idle versions leave /metrics, and a drift
verdict older than its window no longer holds (so a drift incident closes when traffic stops)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.feedback.triggers import conditions
from driftloop.feedback.triggers.policy import DriftRule
from driftloop.monitor.evaluation.collector import DriftCollector
from driftloop.monitor.evaluation.latest import latest_drift
from driftloop.store.registry import get_model
from tests.monitor.evaluation.test_component import _post, _records, _reference


def _samples(collector: DriftCollector, name: str) -> list[Any]:
    return [s for family in collector.collect() for s in family.samples if s.name == name]


def test_idle_versions_leave_the_exposition_and_results_carry_their_age(
    client: TestClient,
) -> None:
    rng = np.random.default_rng(3)
    client.put(
        "/v1/models/churn/reference?prediction_column=prediction",
        content=_reference(rng),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    _post(client, _records(rng, 200, shift=1.0))
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.jobs.run_job("drift", state)
    with state.sessions() as session:
        model = get_model(session, "churn")
        computed = latest_drift(session, model)
        assert computed is not None
        assert computed["age_seconds"] is None  # no clock given: age unknown
    evaluated = datetime.fromisoformat(computed["evaluated_at"])
    clock = FrozenClock(evaluated + timedelta(minutes=5))
    collector = DriftCollector(state.sessions, ttl_seconds=0, clock=clock, stale_after_seconds=7200)
    [age] = _samples(collector, "driftloop_drift_result_age_seconds")
    assert age.value == 300.0
    assert _samples(collector, "driftloop_dataset_drifted")
    clock.advance(timedelta(hours=2))  # no records, so no newer result, for over two hours
    assert _samples(collector, "driftloop_drift_result_age_seconds") == []
    assert _samples(collector, "driftloop_feature_drifted") == []
    with state.sessions() as session:
        model = get_model(session, "churn")
        fresh = latest_drift(session, model, evaluated + timedelta(minutes=30))
        assert fresh is not None
        assert fresh["age_seconds"] == 1800.0
        # Older than its 60-minute window: the verdict no longer holds, the incident closes.
        assert latest_drift(session, model, evaluated + timedelta(minutes=61)) is None
        rule = DriftRule(dataset=False, features=["x"])
        assert conditions.drift(session, model, rule, evaluated + timedelta(minutes=5)) is not None
        assert conditions.drift(session, model, rule, evaluated + timedelta(minutes=61)) is None
