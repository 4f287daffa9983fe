"""A monitor app on a frozen clock, for driving rollouts through their steps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.settings import JobSettings, Settings


def _client(settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    from driftloop.server import create_app

    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


@pytest.fixture
def rollout_client(settings: Settings, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    """A client of the monitor app whose clock the test moves (SQLite and PostgreSQL)."""
    yield from _client(settings, frozen_clock)


@pytest.fixture
def lite_client(sqlite_database_url: str, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    """The same on SQLite only, for rules that do not depend on the database."""
    settings = Settings(database_url=sqlite_database_url, jobs=JobSettings(enabled=False))
    yield from _client(settings, frozen_clock)
