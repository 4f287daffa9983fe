"""A monitor app with a frozen clock and the retraining component, on each test database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from driftloop.clock import FrozenClock
from driftloop.feedback.webhooks import new_secret
from driftloop.server import create_app
from driftloop.settings import Settings
from driftloop.web import MonitorState

SECRET = new_secret()

BOTH_DATABASES = pytest.mark.parametrize(
    "database_url", ["sqlite", "postgresql"], indirect=True, ids=["sqlite", "postgresql"]
)
"""Run a test on PostgreSQL too; the others run on SQLite only (each PostgreSQL database costs
about 3 s to create and drop, and this component's budget is 90 s)."""


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database: SQLite unless the test is marked :data:`BOTH_DATABASES`."""
    name = "sqlite_database_url" if request.param == "sqlite" else "pg_database_url"
    url: str = request.getfixturevalue(name)
    return url


@dataclass
class Monitor:
    """The app under test: its HTTP client, state and clock."""

    client: TestClient
    state: MonitorState
    clock: FrozenClock
    registry: CollectorRegistry

    def deliver(self) -> None:
        """One run of the delivery job, as the leader would run it."""
        self.state.jobs.run_job("webhooks.deliver", self.state)

    def delivery(self, webhook_id: str) -> dict[str, Any]:
        """The delivery log of one message."""
        response = self.client.get(f"/v1/webhooks/deliveries/{webhook_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the monitor's registry (0 when absent)."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def fire(self, model: str = "iris", **body: Any) -> dict[str, Any]:
        """Fire a manual trigger; returns the trigger (with its webhook id)."""
        response = self.client.post(f"/v1/models/{model}/retrain", json=body or None)
        assert response.status_code == 202, response.text
        out: dict[str, Any] = response.json()
        return out


def open_monitor(
    settings: Settings, clock: FrozenClock, transport: httpx.BaseTransport | None = None
) -> Iterator[Monitor]:
    """Build the app, optionally with a fake transport behind ``state.http``."""
    registry = CollectorRegistry(auto_describe=True)
    app = create_app(settings, clock=clock, registry=registry)
    state: MonitorState = app.state.driftloop
    if transport is not None:
        state.http.close()
        state.http = httpx.Client(transport=transport)
    try:
        with TestClient(app) as client:
            assert client.post("/v1/models", json={"name": "iris"}).status_code == 201
            yield Monitor(client, state, clock, registry)
    finally:
        state.engine.dispose()


@pytest.fixture
def webhook_settings(settings: Settings, tmp_path: Any) -> Settings:
    """Test settings with a receiver URL, a secret and snapshots under ``tmp_path``."""
    return settings.model_copy(
        update={
            "webhook_url": "http://receiver.test/webhooks/retrain",
            "webhook_secret": SECRET,
            "retrain": settings.retrain.model_copy(update={"snapshot_dir": str(tmp_path / "snap")}),
        }
    )
