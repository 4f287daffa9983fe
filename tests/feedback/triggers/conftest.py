"""The real monitor app (frozen clock) with a registered model, records and labels over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from driftloop.clock import FrozenClock
from driftloop.settings import Settings
from tests.feedback.webhooks.conftest import Monitor, open_monitor
from tests.feedback.webhooks.conftest import database_url as database_url
from tests.feedback.webhooks.conftest import webhook_settings as webhook_settings

SCHEMA = {
    "features": [
        {"name": "sepal_length", "kind": "numerical"},
        {"name": "color", "kind": "categorical"},
    ],
    "prediction": {"kind": "classification", "classes": ["setosa", "virginica"]},
}
CLASSES = ["setosa", "virginica"]


class Sent:
    """Every request the fake receiver got."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def monitor(webhook_settings: Settings, frozen_clock: FrozenClock, sent: Sent) -> Iterator[Monitor]:
    for m in open_monitor(webhook_settings, frozen_clock, httpx.MockTransport(sent)):
        registered = m.client.post("/v1/models", json={"name": "iris", "schema": SCHEMA})
        assert registered.status_code == 200, registered.text
        yield m


def send_records(
    monitor: Monitor, count: int, *, start: int = 0, version: str = "v1", shift: float = 0.0
) -> list[str]:
    """Log ``count`` predictions at the clock's time (minus a second); returns their ids."""
    ts = (monitor.clock.now() - timedelta(seconds=1)).isoformat()
    records = [
        {
            "request_id": f"req-{i}",
            "model": "iris",
            "version": version,
            "variant": "champion",
            "timestamp": ts,
            "inputs": {
                "sepal_length": 5.0 + (i % 7) * 0.3 + shift,
                "color": ["red", "blue"][i % 2],
            },
            "outputs": {"prediction": CLASSES[i % 2]},
        }
        for i in range(start, start + count)
    ]
    response = monitor.client.post(
        "/v1/records", json={"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    )
    assert response.status_code == 200, response.text
    return [r["request_id"] for r in records]


def send_labels(monitor: Monitor, ids: list[str], *, correct: bool) -> None:
    """Label the records: with their own prediction (correct) or the other class."""
    labels = []
    for rid in ids:
        predicted = int(rid.rsplit("-", 1)[1]) % 2
        labels.append(
            {"request_id": rid, "label": CLASSES[predicted if correct else 1 - predicted]}
        )
    response = monitor.client.post("/v1/feedback", json=labels)
    assert response.status_code in (200, 201, 202), response.text


def set_policy(monitor: Monitor, **policy: Any) -> dict[str, Any]:
    response = monitor.client.put("/v1/models/iris/retraining", json=policy)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def evaluate(monitor: Monitor) -> list[dict[str, Any]]:
    """One run of the retraining job; returns the triggers fired by it."""
    before = {t["id"] for t in triggers(monitor)}
    monitor.state.jobs.run_job("retrain.evaluate", monitor.state)
    return [t for t in triggers(monitor) if t["id"] not in before]


def triggers(monitor: Monitor) -> list[dict[str, Any]]:
    response = monitor.client.get("/v1/models/iris/triggers")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body
