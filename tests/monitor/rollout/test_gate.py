"""The gate's answer in every phase and rollout state, read as Flagger and Argo Rollouts read it.

Flagger POSTs its ``CanaryWebhookPayload`` (``{name, namespace, phase, checksum, metadata}``,
pkg/controller/webhook.go) and counts an answer as success when its status is at most 202; for
the ``rollback`` hook a success *triggers* the rollback. Argo Rollouts' web provider GETs the URL,
counts any non-2xx answer as a measurement Error (metricproviders/webmetric/webmetric.go), reads
``jsonPath`` and evaluates ``successCondition``/``failureCondition``; neither matching is
Inconclusive, which pauses the rollout. Both controllers are Go programs that need a Kubernetes
cluster, which cannot run here: these helpers are stand-ins that apply their documented rules to
our real HTTP answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from tests.monitor.rollout.test_service import FAST, run_jobs
from tests.monitor.rollout.traffic import MODEL, register, send, start

FLAGGER_PAYLOAD = {
    "name": "churn",
    "namespace": "prod",
    "phase": "Progressing",
    "checksum": "6d5b7c8f9",
    "metadata": {"owner": "ml-platform"},
}


def flagger(client: TestClient, phase: str) -> tuple[bool, dict[str, Any]]:
    """What a Flagger webhook of type ``phase`` concludes: success iff the status is <= 202."""
    response = client.post(f"/v1/models/{MODEL}/gate?phase={phase}", json=FLAGGER_PAYLOAD)
    return response.status_code <= 202, response.json()


def argo(client: TestClient, phase: str) -> str:
    """What Argo's web provider with the documented template concludes for one measurement."""
    response = client.get(f"/v1/models/{MODEL}/gate?phase={phase}&provider=argo")
    if not 200 <= response.status_code < 300:
        return "Error"
    result = response.json()["verdict"]  # jsonPath: "{$.verdict}"
    if result == "pass":  # successCondition: result == "pass"
        return "Successful"
    if result == "fail":  # failureCondition: result == "fail"
        return "Failed"
    return "Inconclusive"


def answers(client: TestClient) -> dict[str, Any]:
    """Every consumer's conclusion in the current state."""
    return {
        "pre-rollout": flagger(client, "pre-rollout")[0],
        "rollout": flagger(client, "rollout")[0],
        "confirm-promotion": flagger(client, "confirm-promotion")[0],
        "rollback": flagger(client, "rollback")[0],
        "argo step": argo(client, "step"),
        "argo promotion": argo(client, "promotion"),
    }


def test_without_a_rollout_nothing_proceeds_and_flagger_rolls_back(
    lite_client: TestClient,
) -> None:
    register(lite_client)
    assert answers(lite_client) == {
        "pre-rollout": False,
        "rollout": False,
        "confirm-promotion": False,
        "rollback": True,
        "argo step": "Failed",
        "argo promotion": "Failed",
    }
    legacy = lite_client.get(f"/v1/models/{MODEL}/gate")
    assert (legacy.status_code, legacy.json()["allowed"]) == (412, False)


def test_an_unproven_challenger_may_advance_but_not_be_promoted(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    register(lite_client)
    start(lite_client, **FAST)
    assert answers(lite_client) == {
        "pre-rollout": True,
        "rollout": True,
        "confirm-promotion": False,
        "rollback": False,
        "argo step": "Successful",
        "argo promotion": "Inconclusive",
    }
    # Without ?phase the gate keeps its earlier meaning: "nothing is failing" (phase=step).
    legacy = lite_client.get(f"/v1/models/{MODEL}/gate")
    assert legacy.status_code == 200
    assert legacy.json()["phase"] == "step"
    promotion = lite_client.get(f"/v1/models/{MODEL}/gate?phase=promotion")
    assert promotion.status_code == 409
    assert promotion.json()["verdict"] == "inconclusive"
    assert promotion.json()["allowed"] is False


def test_a_proven_challenger_passes_the_promotion_gate_before_the_last_step(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(11)
    register(client)
    start(client, **{**FAST, "steps": [0.5, 1.0]})
    send(client, rng, clock.now() + timedelta(seconds=1), 300, mode="shadow", accuracy=(0.6, 0.95))
    clock.advance(120)
    run_jobs(client)
    body = client.get(f"/v1/models/{MODEL}/rollout").json()
    assert body["rollout"]["status"] == "active"
    assert body["rollout"]["evidence"]["proven"]["non_inferior"] is True
    ok, answer = flagger(client, "confirm-promotion")
    assert ok
    assert answer["verdict"] == "pass"
    assert answer["caller"] == {"name": "churn", "namespace": "prod", "phase": "Progressing"}
    assert argo(client, "promotion") == "Successful"
    assert flagger(client, "rollback")[0] is False


def test_a_paused_rollout_holds_everyone(lite_client: TestClient) -> None:
    register(lite_client)
    start(lite_client, **FAST)
    assert lite_client.post(f"/v1/models/{MODEL}/rollout", json={"action": "pause"}).is_success
    assert answers(lite_client) == {
        "pre-rollout": False,
        "rollout": False,
        "confirm-promotion": False,
        "rollback": False,
        "argo step": "Inconclusive",
        "argo promotion": "Inconclusive",
    }
    assert lite_client.get(f"/v1/models/{MODEL}/gate").status_code == 409


def test_a_rolled_back_challenger_fails_every_gate_and_triggers_flaggers_rollback(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(12)
    register(client)
    start(client, **FAST)
    send(client, rng, clock.now() + timedelta(seconds=1), 200, mode="shadow", accuracy=(0.95, 0.5))
    clock.advance(30)
    run_jobs(client)
    assert answers(client) == {
        "pre-rollout": False,
        "rollout": False,
        "confirm-promotion": False,
        "rollback": True,
        "argo step": "Failed",
        "argo promotion": "Failed",
    }
    _, body = flagger(client, "rollback")
    assert body["verdict"] == "fail"
    assert body["failing"] == ["primary_metric"]


def test_a_promoted_challenger_passes_every_gate(lite_client: TestClient) -> None:
    register(lite_client)
    start(lite_client, **FAST)
    promoted = lite_client.post(f"/v1/models/{MODEL}/rollout", json={"action": "promote"})
    assert promoted.is_success
    assert answers(lite_client) == {
        "pre-rollout": True,
        "rollout": True,
        "confirm-promotion": True,
        "rollback": False,
        "argo step": "Successful",
        "argo promotion": "Successful",
    }


def test_an_inconclusive_rollout_is_rolled_back_at_its_deadline(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(13)
    register(client)
    start(client, **{**FAST, "max_rollout_seconds": 600, "min_step_samples": 10_000})
    send(client, rng, clock.now() + timedelta(seconds=1), 100, mode="shadow", accuracy=(0.8, 0.8))
    clock.advance(120)
    run_jobs(client)
    body = client.get(f"/v1/models/{MODEL}/rollout").json()
    assert body["rollout"]["status"] == "active"
    deadline = body["rollout"]["evidence"]["deadline"]
    assert deadline["action"] == "rollback"
    assert deadline["seconds_left"] == pytest.approx(480)
    page = client.get(f"/models/{MODEL}")
    assert page.status_code == 200
    assert "deadline: rollback in 480" in page.text
    clock.advance(600)
    run_jobs(client)
    body = client.get(f"/v1/models/{MODEL}/rollout").json()
    assert body["rollout"]["status"] == "rolled_back"
    assert body["decisions"][-1]["reason"].startswith("deadline")
    code, answer = flagger(client, "rollback")
    assert code is True
    assert answer["reason"] == "rolled_back (deadline)"
    assert client.get(f"/v1/models/{MODEL}/routing").json()["mode"] == "single"


def test_a_deadline_may_be_configured_to_promote(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock = lite_client, frozen_clock
    register(client)
    start(client, **{**FAST, "max_step_seconds": 300, "deadline_action": "promote"})
    clock.advance(301)
    run_jobs(client)
    decisions = client.get(f"/v1/models/{MODEL}/rollout").json()["decisions"]
    assert (decisions[-1]["decision"], decisions[-1]["reason"][:8]) == ("promote", "deadline")


@pytest.mark.parametrize("phase", ["later", "Progressing"])
def test_an_unknown_phase_is_refused(lite_client: TestClient, phase: str) -> None:
    register(lite_client)
    response = lite_client.get(f"/v1/models/{MODEL}/gate?phase={phase}")
    assert response.status_code == 422
    assert "phase" in response.text
