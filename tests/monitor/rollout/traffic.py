"""Synthetic traffic for rollout tests: records as a sidecar would ship them, and their labels."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

MODEL = "churn"


def register(client: TestClient, *, champion: str = "v1") -> None:
    """A classification model with one numerical feature and a champion."""
    body = {
        "name": MODEL,
        "schema": {
            "features": [{"name": "x", "kind": "numerical"}],
            "prediction": {"kind": "classification", "classes": [0, 1]},
        },
        "versions": [{"version": champion, "role": "champion", "url": "http://127.0.0.1:9/a"}],
    }
    response = client.post("/v1/models", json=body)
    assert response.status_code in (200, 201), response.text


def start(client: TestClient, version: str = "v2", **config: Any) -> dict[str, Any]:
    """Start a rollout of ``version`` with settings overrides."""
    response = client.post(
        f"/v1/models/{MODEL}/rollout",
        json={"action": "start", "version": version, "config": config},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _record(
    rid: str, version: str, variant: str, ts: datetime, pred: int, status: int, latency: float
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "model": MODEL,
        "version": version,
        "variant": variant,
        "timestamp": ts.isoformat(),
        "inputs": {"x": 1.0},
        "outputs": {"prediction": pred} if status < 500 else {},
        "latency_ms": latency,
        "status": status,
    }


def _answer(rng: np.random.Generator, label: int, accuracy: float) -> int:
    return label if rng.random() < accuracy else 1 - label


def send(
    client: TestClient,
    rng: np.random.Generator,
    start: datetime,
    n: int,
    *,
    mode: str,
    weight: float = 0.5,
    accuracy: tuple[float, float] = (0.7, 0.95),
    versions: tuple[str, str] = ("v1", "v2"),
    challenger_errors: float = 0.0,
    challenger_latency: float = 10.0,
) -> None:
    """``n`` labeled requests from ``start`` on, one second apart, routed like ``mode``."""
    records, labels = [], []
    for i in range(n):
        rid = uuid.uuid4().hex
        ts = start + timedelta(seconds=i * 0.1)
        label = int(rng.integers(0, 2))

        to_challenger = mode == "canary" and rng.random() < weight
        if mode == "shadow" or not to_challenger:
            records.append(
                _record(
                    rid, versions[0], "champion", ts, _answer(rng, label, accuracy[0]), 200, 10.0
                )
            )
        if mode == "shadow" or to_challenger:
            status = 503 if rng.random() < challenger_errors else 200
            variant = "shadow" if mode == "shadow" else "challenger"
            records.append(
                _record(
                    rid,
                    versions[1],
                    variant,
                    ts,
                    _answer(rng, label, accuracy[1]),
                    status,
                    challenger_latency,
                )
            )
        labels.append({"request_id": rid, "label": label, "model": MODEL})
    for chunk in range(0, len(records), 2000):
        response = client.post(
            "/v1/records",
            json={"batch_id": uuid.uuid4().hex, "records": records[chunk : chunk + 2000]},
        )
        assert response.status_code == 200, response.text
    response = client.post("/v1/feedback", json=labels)
    assert response.status_code == 200, response.text
