"""Sticky A/B counted by unit: a few very active users do not make a faithful split look skewed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from tests.monitor.rollout.test_service import FAST, run_jobs
from tests.monitor.rollout.traffic import MODEL, start

USERS = 60


def _register(client: TestClient) -> None:
    body = {
        "name": MODEL,
        "schema": {
            "features": [
                {"name": "x", "kind": "numerical"},
                {"name": "user", "kind": "categorical"},
            ],
            "prediction": {"kind": "classification", "classes": [0, 1]},
        },
        "versions": [{"version": "v1", "role": "champion", "url": "http://127.0.0.1:9/a"}],
    }
    assert client.post("/v1/models", json=body).status_code == 201


def _send(client: TestClient, rng: np.random.Generator, clock: FrozenClock, n: int) -> None:
    """``n`` requests of users of very uneven activity; even users are sticky on the challenger
    (half the users: the policy's 50 %), and user 0 alone sends 40 % of the requests."""
    activity = np.r_[0.4, np.full(USERS - 1, 0.6 / (USERS - 1))]
    records: list[dict[str, Any]] = []
    labels = []
    for i, user in enumerate(rng.choice(USERS, size=n, p=activity)):
        rid = uuid.uuid4().hex
        label = int(rng.integers(0, 2))
        on_b = user % 2 == 0
        pred = label if rng.random() < 0.8 else 1 - label
        records.append(
            {"request_id": rid, "model": MODEL, "version": "v2" if on_b else "v1",
             "variant": "challenger" if on_b else "champion",
             "timestamp": (clock.now() + timedelta(seconds=10 + i * 0.05)).isoformat(),
             "inputs": {"x": 1.0, "user": f"u{user}"}, "outputs": {"prediction": pred},
             "latency_ms": 10.0, "status": 200}
        )  # fmt: skip
        labels.append({"request_id": rid, "label": label, "model": MODEL})
    batch = {"batch_id": uuid.uuid4().hex, "records": records}
    assert client.post("/v1/records", json=batch).status_code == 200
    assert client.post("/v1/feedback", json=labels).status_code == 200


def test_a_faithful_sticky_split_with_one_heavy_user_is_not_a_sample_ratio_mismatch(
    lite_client: TestClient, frozen_clock: FrozenClock
) -> None:
    client, clock, rng = lite_client, frozen_clock, np.random.default_rng(31)
    _register(client)
    config = {**FAST, "shadow": False, "split": "ab", "sticky_key": "json:user"}
    start(client, **{**config, "min_step_samples": 10_000})
    _send(client, rng, clock, 1500)
    clock.advance(300)
    run_jobs(client)
    body = client.get(f"/v1/models/{MODEL}/rollout").json()
    assert body["rollout"]["status"] == "active", body["decisions"][-1]["reason"]
    evidence = body["rollout"]["evidence"]
    srm = evidence["srm"]
    assert srm["counted"] == "units"
    assert srm["records"]["champion"] + srm["records"]["challenger"] == USERS
    assert srm["ok"] is True
    assert evidence["comparison"] == "stratified, clustered by sticky key"
    # Counted by request, the same traffic is ~70/30: the earlier design rolled it back.
    assert evidence["samples"]["challenger"] > 1.8 * evidence["samples"]["champion"]
