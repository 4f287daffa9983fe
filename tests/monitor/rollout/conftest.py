"""A monitor app on a frozen clock, for driving rollouts through their steps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from driftloop.clock import FrozenClock
from driftloop.settings import Settings


@pytest.fixture
def rollout_client(settings: Settings, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    """A client of the monitor app whose clock the test moves."""
    from driftloop.monitor import create_app

    app = create_app(settings, clock=frozen_clock)
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()
