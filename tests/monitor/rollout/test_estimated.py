"""The estimated challenger-vs-champion difference in rollouts (before labels arrive): shown in
the evidence, marked as estimated, never promoting, rolling back early only when enabled."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.contract import PredictionKind
from driftloop.monitor.rollout.decide import Action, Evidence, Reason, Step, decide
from driftloop.monitor.rollout.evidence import estimated_difference
from driftloop.settings import EstimationSettings, JobSettings, RolloutSettings, Settings
from driftloop.store import Rollout
from tests.monitor.rollout.traffic import MODEL, start
from tests.scored import calibrated_classifier

# One canary step at half the traffic, then all of it; labels never come in these tests.
CONFIG: dict[str, Any] = {
    "shadow": False,
    "steps": [0.5, 1.0],
    "min_step_samples": 50,
    "min_step_seconds": 0,
    "min_compare_samples": 30,
    "tuning_samples": 200,
    "srm_grace_seconds": 0,
}


@pytest.fixture
def client(sqlite_database_url: str, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    from driftloop.server import create_app

    settings = Settings(
        database_url=sqlite_database_url,
        jobs=JobSettings(enabled=False),
        estimation=EstimationSettings(ttl_seconds=0),
    )
    app = create_app(settings, clock=frozen_clock)
    with TestClient(app) as test_client:
        yield test_client
    app.state.driftloop.engine.dispose()


def register(client: TestClient) -> None:
    """A scored classifier with a champion and a reference (scores and labels)."""
    body = {
        "name": MODEL,
        "schema": {
            "features": [{"name": "x", "kind": "numerical"}],
            "prediction": {"kind": "classification", "classes": ["a", "b"]},
            "label_column": "label",
        },
        "versions": [{"version": "v1", "role": "champion", "url": "http://127.0.0.1:9/a"}],
    }
    assert client.post("/v1/models", json=body).status_code in (200, 201)
    response = client.put(
        f"/v1/models/{MODEL}/reference",
        params={"score_columns": "p_a,p_b"},
        content=calibrated_classifier(600, 0, 1.0).to_csv(index=False).encode(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text


def send(client: TestClient, clock: FrozenClock, champion: float, challenger: float) -> None:
    """200 unlabeled requests per arm, with class scores, split half and half: the arms' rows
    spread ``champion`` and ``challenger`` wide."""
    ts = (clock.now() - timedelta(seconds=30)).isoformat()
    records = []
    for version, variant, spread, seed in (
        ("v1", "champion", champion, 1),
        ("v2", "challenger", challenger, 2),
    ):
        for row in calibrated_classifier(200, seed, spread).itertuples():
            records.append(
                {
                    "request_id": uuid.uuid4().hex,
                    "model": MODEL,
                    "version": version,
                    "variant": variant,
                    "timestamp": ts,
                    "inputs": {"x": row.x},
                    "outputs": {
                        "prediction": row.prediction,
                        "probabilities": {"a": row.p_a, "b": row.p_b},
                    },
                    "latency_ms": 10.0,
                    "status": 200,
                }
            )
    response = client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    )
    assert response.status_code == 200, response.text


def evaluate(client: TestClient) -> dict[str, Any]:
    """One run of the rollout job; the rollout as ``GET /v1/models/{name}/rollout`` shows it."""
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.jobs.run_job("rollout", state)
    response = client.get(f"/v1/models/{MODEL}/rollout")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_evidence_shows_the_estimated_difference_and_it_never_promotes(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    register(client)
    start(client, **CONFIG, estimated_rollback=True)
    # The challenger is estimated far better than the champion: nothing is labeled.
    send(client, frozen_clock, champion=0.1, challenger=1.0)
    frozen_clock.advance(60)
    for _ in range(3):
        body = evaluate(client)
        frozen_clock.advance(600)
    rollout = body["rollout"]
    assert (rollout["status"], rollout["step"]) == ("active", 0)
    assert [d["decision"] for d in body["decisions"]] == ["start"]
    evidence = rollout["evidence"]
    assert evidence["verdict"] == {"action": "hold", "reason": "waiting"}
    assert evidence["samples"]["challenger"] == 0  # no labels
    estimate = evidence["estimated_difference"]
    assert estimate["estimated"] is True
    assert estimate["metric"] == "accuracy"
    assert estimate["rows"] == {"champion": 200, "challenger": 200}
    # Oriented like the labeled difference: positive, the challenger is better.
    assert 0 < estimate["lower"] < estimate["estimate"] < estimate["upper"]
    arms = estimate["challenger"]["estimate"] - estimate["champion"]["estimate"]
    assert estimate["estimate"] == pytest.approx(arms)
    # The model's page and its rollout section show it too.
    view = client.get(f"/v1/models/{MODEL}").json()["rollout"]
    assert view["estimated_difference"]["estimate"] == pytest.approx(estimate["estimate"])
    page = client.get(f"/models/{MODEL}").text
    assert "estimated difference (challenger − champion, no labels, never promotes)" in page
    gate = client.get(f"/v1/models/{MODEL}/gate", params={"phase": "promotion"})
    assert gate.status_code == 409  # not proven: an estimate proves nothing


@pytest.mark.parametrize("enabled", [False, True], ids=["off", "on"])
def test_a_large_estimated_degradation_rolls_back_early_only_when_enabled(
    client: TestClient, frozen_clock: FrozenClock, enabled: bool
) -> None:
    register(client)
    start(client, **CONFIG, **({"estimated_rollback": True} if enabled else {}))
    send(client, frozen_clock, champion=1.0, challenger=0.1)
    frozen_clock.advance(60)
    body = evaluate(client)
    estimate = body["rollout"]["evidence"]["estimated_difference"]
    assert estimate["upper"] < -0.05  # the default margin
    decision = body["decisions"][-1]
    if not enabled:
        assert body["rollout"]["status"] == "active"
        assert decision["decision"] == "start"
        assert body["rollout"]["evidence"]["verdict"]["reason"] == "waiting"
        return
    assert body["rollout"]["status"] == "rolled_back"
    assert decision["decision"] == "rollback"
    assert decision["reason"].startswith("estimated_inferior")
    assert decision["evidence"]["estimated_difference"]["estimated"] is True
    gate = client.get(f"/v1/models/{MODEL}/gate")
    assert gate.status_code == 412
    assert gate.json()["failing"] == ["estimated_primary_metric"]
    routing = client.get(f"/v1/models/{MODEL}/routing").json()
    assert (routing["mode"], routing["champion"]["version"]) == ("single", "v1")


def test_a_degradation_within_the_margin_does_not_roll_back(
    client: TestClient, frozen_clock: FrozenClock
) -> None:
    register(client)
    start(client, **CONFIG, estimated_rollback=True, estimated_rollback_margin=0.6)
    send(client, frozen_clock, champion=1.0, challenger=0.1)
    frozen_clock.advance(60)
    body = evaluate(client)
    assert body["rollout"]["evidence"]["estimated_difference"]["upper"] > -0.6
    assert body["rollout"]["status"] == "active"


def _evidence(**fields: Any) -> Evidence:
    base: dict[str, Any] = {
        "lower": -1.0,
        "upper": 1.0,
        "n_champion": 500,
        "n_challenger": 500,
        "step_samples": 500,
        "step_seconds": 600.0,
    }
    return Evidence(**{**base, **fields})


def _decided(config: RolloutSettings, step: int, last: int, e: Evidence) -> tuple[Action, Reason]:
    action, reason = decide(config, step, last, e)
    return Action(int(action)), Reason(int(reason))


def test_labels_decide_before_the_estimate() -> None:
    """On the last step with non-inferiority shown by labels, a bad estimate does not roll back;
    without labels proving anything, it does (when enabled), and it never advances alone."""
    config = RolloutSettings(
        estimated_rollback=True, min_step_samples=10, min_step_seconds=0, steps=[0.5, 1.0]
    )
    last = 2  # shadow, 0.5, 1.0
    proven = _evidence(lower=0.0, estimated_upper=-0.5)
    assert _decided(config, last, last, proven) == (Action.promote, Reason.non_inferior)
    pending = _evidence(n_champion=0, n_challenger=0, step_samples=0, estimated_upper=-0.5)
    assert _decided(config, 1, last, pending) == (Action.rollback, Reason.estimated_inferior)
    off = config.model_copy(update={"estimated_rollback": False})
    assert _decided(off, 1, last, pending) == (Action.hold, Reason.waiting)
    better = _evidence(n_champion=0, n_challenger=0, step_samples=0, estimated_upper=0.5)
    assert _decided(config, last, last, better) == (Action.hold, Reason.waiting)


def test_a_regression_difference_compares_the_rollouts_loss() -> None:
    """Squared loss: the estimated RMSE is squared; positive means the challenger errs less."""
    rollout = Rollout(champion_version="v1", challenger_version="v2")

    def group(version: str, variant: str, rmse: float) -> dict[str, Any]:
        metric = {"estimate": rmse, "lower": rmse - 0.1, "upper": rmse + 0.1}
        return {
            "version": version,
            "variant": variant,
            "rows": 100,
            "confidence": 0.95,
            "metrics": {"rmse": metric, "mae": metric},
        }

    section = {"groups": [group("v1", "champion", 2.0), group("v2", "shadow", 1.0)]}
    paired = estimated_difference(
        section, rollout, Step("shadow", 0.0), PredictionKind.regression, "squared"
    )
    assert paired is not None
    assert paired["metric"] == "negative_squared_error"
    assert paired["estimate"] == pytest.approx(4.0 - 1.0)
    assert paired["lower"] < 3.0 < paired["upper"]
    absolute = estimated_difference(
        section, rollout, Step("shadow", 0.0), PredictionKind.regression, "absolute"
    )
    assert absolute is not None
    assert absolute["estimate"] == pytest.approx(1.0)
    # The canary step reads the challenger variant, which has no estimate here.
    canary = Step("canary", 0.5)
    assert (
        estimated_difference(section, rollout, canary, PredictionKind.regression, "absolute")
        is None
    )
    assert (
        estimated_difference(None, rollout, canary, PredictionKind.regression, "absolute") is None
    )
