"""Rollouts driven through the monitor's API and its job, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.monitor.rollout import start_rollout
from driftloop.store.registry import get_model
from tests.monitor.rollout.traffic import MODEL, register, send, start

FAST: dict[str, Any] = {
    "min_step_samples": 50,
    "min_step_seconds": 60,
    "min_compare_samples": 30,
    "tuning_samples": 200,
    "steps": [0.5, 1.0],
    "srm_grace_seconds": 5,
}


def run_jobs(client: TestClient) -> None:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.jobs.run_once(state)


def routing(client: TestClient) -> dict[str, Any]:
    response = client.get(f"/v1/models/{MODEL}/routing")
    assert response.status_code == 200, response.text
    return dict(response.json())


def history(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"/v1/models/{MODEL}/rollout")
    assert response.status_code == 200, response.text
    return list(response.json()["decisions"])


def roles(client: TestClient) -> dict[str, str]:
    (model,) = [m for m in client.get("/v1/models").json() if m["name"] == MODEL]
    return {v["version"]: v["role"] for v in model["versions"]}


def section(client: TestClient) -> Any:
    """The ``rollout`` section ``GET /v1/models/{name}`` shows."""
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        model = get_model(session, MODEL)
        return state.model_sections["rollout"](session, model)


def test_a_better_challenger_walks_every_step_and_is_promoted(
    rollout_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = rollout_client, frozen_clock, np.random.default_rng(1)
    register(client)
    assert client.get(f"/v1/models/{MODEL}/routing").status_code == 404
    start(client, **FAST)
    policy = routing(client)
    assert policy["mode"] == "shadow"
    assert policy["champion"] == {"version": "v1", "url": "http://127.0.0.1:9/a"}
    assert policy["challenger"] == {"version": "v2", "url": None}
    assert roles(client) == {"v1": "champion", "v2": "challenger"}

    send(client, rng, clock.now() + timedelta(seconds=1), 200, mode="shadow")
    clock.advance(120)
    run_jobs(client)
    policy = routing(client)
    assert (policy["mode"], policy["weight"], policy["revision"]) == ("canary", 0.5, 2)

    send(client, rng, clock.now() + timedelta(seconds=10), 300, mode="canary", weight=0.5)
    clock.advance(120)
    run_jobs(client)
    assert (routing(client)["mode"], routing(client)["weight"]) == ("canary", 1.0)

    send(client, rng, clock.now() + timedelta(seconds=10), 100, mode="canary", weight=1.0)
    clock.advance(120)
    run_jobs(client)
    policy = routing(client)
    assert policy["mode"] == "single"
    assert policy["champion"]["version"] == "v2"
    assert policy["challenger"] is None
    assert roles(client) == {"v1": "retired", "v2": "champion"}

    decisions = history(client)
    assert [d["decision"] for d in decisions] == ["start", "advance", "advance", "promote"]
    promote = decisions[-1]
    assert promote["actor"] == "auto"
    assert promote["reason"].startswith("non_inferior")
    evidence = promote["evidence"]
    assert evidence["difference"]["running_lower"] > -0.01
    assert evidence["samples"]["challenger"] >= 50
    assert evidence["guardrails"]["error_rate"]["ok"] is True
    assert evidence["guardrails"]["latency_p99"]["ok"] is True
    assert 0.0 <= evidence["srm"]["p_value"] <= 1.0
    assert decisions[1]["evidence"]["comparison"] == "paired"

    gate = client.get(f"/v1/models/{MODEL}/gate")
    assert gate.status_code == 200
    assert gate.json()["allowed"] is True
    flagger = client.post(
        f"/v1/models/{MODEL}/gate", json={"name": "churn", "phase": "Progressing"}
    )
    assert flagger.status_code == 200
    assert section(client)["status"] == "promoted"
    metrics = client.get("/metrics").text
    assert f'driftloop_rollout_decisions_total{{decision="promote",model="{MODEL}"}} 1.0' in metrics
    assert f'driftloop_rollout_state{{model="{MODEL}",state="promoted"}} 1.0' in metrics
    documented = (Path(__file__).parents[3] / "docs" / "metrics.md").read_text()
    exported = set(re.findall(r"^(driftloop_rollout_\w+?)(?:_created)?[{ ]", metrics, re.M))
    assert len(exported) >= 8
    assert {name for name in exported if f"`{name}`" not in documented} == set()


def test_a_worse_challenger_is_rolled_back_in_shadow(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(2)
    register(client)
    start(client, **FAST)
    send(client, rng, clock.now() + timedelta(seconds=1), 200, mode="shadow", accuracy=(0.95, 0.5))
    clock.advance(30)
    run_jobs(client)
    policy = routing(client)
    assert (policy["mode"], policy["champion"]["version"], policy["challenger"]) == (
        "single",
        "v1",
        None,
    )
    assert roles(client) == {"v1": "champion", "v2": "retired"}
    rollback = history(client)[-1]
    assert rollback["decision"] == "rollback"
    assert rollback["reason"].startswith("inferior")
    assert rollback["evidence"]["difference"]["running_upper"] < -0.01
    gate = client.get(f"/v1/models/{MODEL}/gate")
    assert gate.status_code == 412
    assert gate.json()["allowed"] is False


@pytest.mark.parametrize(
    ("traffic", "reason", "failing"),
    [
        ({"challenger_errors": 0.3}, "error_rate", "error_rate"),
        ({"challenger_latency": 80.0}, "latency", "latency_p99"),
        ({"weight": 0.2}, "sample_ratio_mismatch", "sample_ratio"),
    ],
    ids=["errors", "latency", "skewed-split"],
)
def test_a_failing_guardrail_or_split_rolls_the_canary_back(
    lite_client: TestClient,
    frozen_clock: FrozenClock,
    traffic: dict[str, Any],
    reason: str,
    failing: str,
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(3)
    register(client)
    start(client, **{**FAST, "shadow": False, "min_step_samples": 10_000})
    send(
        client,
        rng,
        clock.now() + timedelta(seconds=10),
        1500,
        mode="canary",
        **{"weight": 0.5, "accuracy": (0.8, 0.8), **traffic},
    )
    clock.advance(300)
    run_jobs(client)
    decision = history(client)[-1]
    assert decision["decision"] == "rollback"
    assert decision["reason"].startswith(reason)
    gate = client.get(f"/v1/models/{MODEL}/gate")
    assert gate.status_code == 412
    assert failing in gate.json()["failing"]
    assert routing(client)["mode"] == "single"


def test_operators_pause_resume_and_promote_and_repeats_are_harmless(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(4)
    register(client)
    start(client, **FAST)
    url = f"/v1/models/{MODEL}/rollout"
    assert client.post(url, json={"action": "pause"}).status_code == 200
    assert client.post(url, json={"action": "pause"}).status_code == 200
    assert client.get(f"/v1/models/{MODEL}/gate").status_code == 409
    send(client, rng, clock.now() + timedelta(seconds=1), 200, mode="shadow")
    clock.advance(120)
    run_jobs(client)
    assert routing(client)["mode"] == "shadow"  # paused: assessed, not moved
    body = client.get(url).json()
    assert body["rollout"]["evidence"]["verdict"]["action"] == "advance"

    assert client.post(url, json={"action": "resume"}).status_code == 200
    promoted = client.post(url, json={"action": "promote", "reason": "checked by hand"})
    assert promoted.status_code == 200, promoted.text
    assert routing(client)["champion"]["version"] == "v2"
    assert client.post(url, json={"action": "promote"}).status_code == 200
    conflict = client.post(url, json={"action": "rollback"})
    assert conflict.status_code == 409
    assert "promoted already" in conflict.json()["detail"]
    assert [(d["decision"], d["actor"]) for d in history(client)] == [
        ("start", "admin"),
        ("pause", "admin"),
        ("resume", "admin"),
        ("promote", "admin"),
    ]
    assert history(client)[-1]["reason"] == "checked by hand"


def test_a_new_challenger_supersedes_the_running_rollout(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client = lite_client
    register(client)
    first = start(client, **FAST)
    assert start(client, **FAST)["rollout"]["id"] == first["rollout"]["id"]  # same: no-op
    second = start(client, "v3", **FAST)
    assert second["rollout"]["challenger"] == "v3"
    assert routing(client)["challenger"]["version"] == "v3"
    assert roles(client) == {"v1": "champion", "v2": "retired", "v3": "challenger"}
    body = client.get(f"/v1/models/{MODEL}/rollout").json()
    assert body["earlier"][0]["status"] == "superseded"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"action": "start"}, 422, "needs the challenger 'version'"),
        ({"action": "start", "version": "v1"}, 422, "already the champion"),
        ({"action": "start", "version": "v2", "config": {"marjin": 1}}, 422, "marjin"),
        ({"action": "start", "version": "v2", "config": {"steps": [0.5]}}, 422, "must be 1.0"),
        ({"action": "jump"}, 422, "action"),
        ({"action": "resume"}, 409, "no rollout"),
        ({"action": "pause", "version": "v2"}, 422, "takes no version"),
    ],
    ids=["no-version", "champion", "unknown-setting", "bad-plan", "bad-action", "none", "extra"],
)
def test_bad_actions_are_refused_with_a_message(
    lite_client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    register(lite_client)
    response = lite_client.post(f"/v1/models/{MODEL}/rollout", json=body)
    assert response.status_code == status, response.text
    assert message in response.text
    assert lite_client.get(f"/v1/models/{MODEL}/routing").status_code == 404


def test_unknown_models_are_404_everywhere(lite_client: TestClient) -> None:
    for path in ("routing", "gate", "rollout"):
        response = lite_client.get(f"/v1/models/nope/{path}")
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]
    register(lite_client)
    assert lite_client.get(f"/v1/models/{MODEL}/gate").status_code == 412
    assert lite_client.get(f"/v1/models/{MODEL}/rollout").status_code == 404


def test_start_rollout_is_callable_from_other_components(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    register(lite_client)
    state = lite_client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        start_rollout(session, get_model(session, MODEL), "v7", frozen_clock.now())
    policy = routing(lite_client)
    assert (policy["mode"], policy["challenger"]["version"]) == ("shadow", "v7")
    assert [d["decision"] for d in history(lite_client)] == ["start"]


def test_a_regression_challenger_with_a_lower_loss_passes_the_shadow_step(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(6)
    body = {
        "name": MODEL,
        "schema": {
            "features": [{"name": "x", "kind": "numerical"}],
            "prediction": {"kind": "regression"},
        },
        "versions": [{"version": "v1", "role": "champion"}],
    }
    assert client.post("/v1/models", json=body).status_code == 201
    start(client, **FAST)
    records, labels = [], []
    for i in range(120):
        truth = float(rng.normal())
        ts = (clock.now() + timedelta(seconds=1 + i * 0.1)).isoformat()
        for version, variant, noise in (("v1", "champion", 1.0), ("v2", "shadow", 0.2)):
            records.append(
                {"request_id": f"r{i}", "model": MODEL, "version": version, "variant": variant,
                 "timestamp": ts, "inputs": {"x": truth},
                 "outputs": {"prediction": truth + float(rng.normal(0, noise))}}
            )  # fmt: skip
        labels.append({"request_id": f"r{i}", "label": truth, "model": MODEL})
    assert (
        client.post("/v1/records", json={"batch_id": "b1", "records": records}).status_code == 200
    )
    assert client.post("/v1/feedback", json=labels).status_code == 200
    clock.advance(120)
    run_jobs(client)
    advance = history(client)[-1]
    assert advance["decision"] == "advance"
    evidence = advance["evidence"]
    assert evidence["metric"] == "negative_squared_error"
    assert evidence["comparison"] == "paired"
    assert evidence["difference"]["lower"] > 0  # the challenger's squared error is lower
    assert evidence["metric_values"]["challenger"] > evidence["metric_values"]["champion"]


def test_a_sticky_ab_rollout_publishes_its_key_with_the_split(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(7)
    register(client)
    start(client, **{**FAST, "split": "ab", "sticky_key": "header:X-User-ID"})
    shadow = routing(client)
    assert (shadow["mode"], shadow["sticky_key"]) == ("shadow", None)
    send(client, rng, clock.now() + timedelta(seconds=1), 200, mode="shadow")
    clock.advance(120)
    run_jobs(client)
    policy = routing(client)
    assert (policy["mode"], policy["weight"], policy["sticky_key"]) == (
        "ab",
        0.5,
        "header:X-User-ID",
    )
