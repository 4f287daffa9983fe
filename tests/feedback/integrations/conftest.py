"""The monitor app (frozen clock) with the MLflow integration, and MLflow's REST API faked.

The fake answers the calls Driftloop makes (aliases, tags, a model version) the way MLflow 3
does; the real server is in ``test_mlflow_e2e.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from driftloop.clock import FrozenClock
from driftloop.server import create_app
from driftloop.settings import MlflowSettings, Settings
from driftloop.web import MonitorState

MLFLOW = "http://mlflow.test:5000"
SECRET = "mlflow-webhook-secret-0123456789"


@dataclass
class FakeMlflow:
    """MLflow's registry REST API in memory: aliases, version tags, run tags."""

    up: bool = True
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    version_tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    run_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    versions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path.removeprefix("/api/2.0/mlflow")
        body = json.loads(request.content) if request.content else dict(request.url.params)
        self.calls.append((request.method, path, body))
        if (request.method, path) == ("POST", "/registered-models/alias"):
            self.aliases[(body["name"], body["alias"])] = body["version"]
        elif (request.method, path) == ("GET", "/registered-models/alias"):
            version = self.aliases.get((body["name"], body["alias"]))
            if version is None:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"model_version": {"version": version}})
        elif (request.method, path) == ("DELETE", "/registered-models/alias"):
            self.aliases.pop((body["name"], body["alias"]), None)
        elif (request.method, path) == ("POST", "/model-versions/set-tag"):
            tags = self.version_tags.setdefault((body["name"], body["version"]), {})
            tags[body["key"]] = body["value"]
        elif (request.method, path) == ("POST", "/runs/log-batch"):
            tags = self.run_tags.setdefault(body["run_id"], {})
            tags.update({t["key"]: t["value"] for t in body["tags"]})
        elif (request.method, path) == ("GET", "/model-versions/get"):
            found = self.versions.get((body["name"], body["version"]))
            if found is None:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"model_version": found})
        else:
            return httpx.Response(404, json={"error_code": "ENDPOINT_NOT_FOUND"})
        return httpx.Response(200, json={})


@dataclass
class Monitor:
    """The app under test, its clock and the fake MLflow behind its HTTP client."""

    client: TestClient
    state: MonitorState
    clock: FrozenClock
    registry: CollectorRegistry
    mlflow: FakeMlflow

    def counted(self, outcome: str) -> float:
        sample = self.registry.get_sample_value(
            "driftloop_mlflow_webhooks_total", {"outcome": outcome}
        )
        return sample or 0.0

    def run(self, job: str) -> None:
        self.state.jobs.run_job(job, self.state)

    def deliver(self) -> None:
        """What the leader does: queue verdicts, then send due outbox messages."""
        self.run("mlflow.writeback")
        self.run("webhooks.deliver")


def signed(
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int,
    delivery_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery exactly as MLflow 3 makes one (``mlflow/webhooks/delivery.py``)."""
    body = json.dumps(event)  # MLflow signs json.dumps' default output and sends those bytes
    delivery_id = delivery_id or str(uuid.uuid4())
    content = f"{delivery_id}.{timestamp}.{body}"
    digest = hmac.new(secret.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).digest()
    return body.encode(), {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Signature": "v1," + base64.b64encode(digest).decode(),
    }


def version_created(name: str, version: str, **extra: Any) -> dict[str, Any]:
    """A ``model_version.created`` event."""
    data = {
        "name": name,
        "version": version,
        "source": f"models:/m-{version}",
        "run_id": None,
        "tags": {},
        "description": None,
        **extra,
    }
    return {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-12-07T00:00:00+00:00",
        "data": data,
    }


@pytest.fixture
def mlflow_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "mlflow": MlflowSettings(
                tracking_uri=MLFLOW,
                webhook_secret=SECRET,
                url_template="http://serving.test/{name}/{version}",
                models={"churn-prod": "churn"},
                register_on=["model_version.created", "model_version_tag.set"],
            )
        }
    )


def open_monitor(settings: Settings, clock: FrozenClock) -> Iterator[Monitor]:
    """The app with the fake MLflow behind ``state.http`` and a model ``churn`` (champion v1)."""
    registry = CollectorRegistry(auto_describe=True)
    app = create_app(settings, clock=clock, registry=registry)
    state: MonitorState = app.state.driftloop
    fake = FakeMlflow()
    state.http.close()
    state.http = httpx.Client(transport=httpx.MockTransport(fake))
    try:
        with TestClient(app) as client:
            body = {
                "name": "churn",
                "schema": {
                    "features": [{"name": "x", "kind": "numerical"}],
                    "prediction": {"kind": "classification", "classes": [0, 1]},
                },
                "versions": [{"version": "1", "role": "champion", "url": "http://serving.test/1"}],
            }
            assert client.post("/v1/models", json=body).status_code == 201
            yield Monitor(client, state, clock, registry, fake)
    finally:
        state.engine.dispose()


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test asks for PostgreSQL too (``indirect`` parametrisation)."""
    name = "sqlite_database_url" if request.param == "sqlite" else "pg_database_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def monitor(mlflow_settings: Settings, frozen_clock: FrozenClock) -> Iterator[Monitor]:
    yield from open_monitor(mlflow_settings, frozen_clock)
