"""Helpers of the feedback tests: a model with a schema, records and labels over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CLASSES = ["cat", "dog", "fox"]


def register(client: TestClient, name: str = "pets", **prediction: Any) -> None:
    """Register a model with two features (``color`` is a segment feature)."""
    body = {
        "name": name,
        "schema": {
            "features": [
                {"name": "size", "kind": "numerical"},
                {"name": "color", "kind": "categorical", "segment": True},
            ],
            "prediction": prediction or {"kind": "classification", "classes": CLASSES},
        },
        "versions": [{"version": "v1"}],
    }
    response = client.post("/v1/models", json=body)
    assert response.status_code in (200, 201), response.text


def record(
    request_id: str,
    prediction: Any,
    *,
    model: str = "pets",
    version: str = "v1",
    variant: str = "champion",
    at: datetime = T0,
    size: float = 1.0,
    color: str = "red",
    scores: Any = None,
) -> dict[str, Any]:
    """One record as a sidecar sends it."""
    outputs: dict[str, Any] = {"prediction": prediction}
    if scores is not None:
        outputs["probabilities"] = scores
    return {
        "request_id": request_id,
        "model": model,
        "version": version,
        "variant": variant,
        "timestamp": at.isoformat(),
        "inputs": {"size": size, "color": color},
        "outputs": outputs,
        "latency_ms": 2.0,
        "status": 200,
    }


def send_records(client: TestClient, records: list[dict[str, Any]]) -> None:
    """POST records in one batch; they must all be accepted."""
    body = {"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    response = client.post("/v1/records", json=body)
    assert response.status_code == 200, response.text


def send_labels(client: TestClient, labels: Any, status: int = 200) -> dict[str, Any]:
    """POST labels as JSON; check the status and return the body."""
    response = client.post("/v1/feedback", json=labels)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def later(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def joined(client: TestClient, name: str = "pets") -> Any:
    """``labeled_rows`` of the model, indexed by (request_id, variant)."""
    from driftloop.feedback import labeled_rows
    from driftloop.store.registry import get_model

    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        frame = labeled_rows(session, get_model(session, name))
    return frame.set_index(["request_id", "variant"]).sort_index()


def sample(client: TestClient, name: str, labels: dict[str, str] | None = None) -> float | None:
    """A sample value from the monitor's registry."""
    registry = client.app.state.driftloop.registry  # type: ignore[attr-defined]
    value: float | None = registry.get_sample_value(name, labels or {})
    return value
