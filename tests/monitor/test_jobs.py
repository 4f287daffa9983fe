"""Periodic jobs: what they export for the stale-results alert (DriftloopJobStale)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from driftloop.clock import FrozenClock
from driftloop.settings import Settings
from driftloop.web.state import MonitorState


@pytest.fixture
def state(settings: Settings, frozen_clock: FrozenClock) -> Iterator[MonitorState]:
    from driftloop.server import create_app

    app: FastAPI = create_app(settings, clock=frozen_clock, registry=CollectorRegistry())
    monitor: MonitorState = app.state.driftloop
    yield monitor
    monitor.jobs.stop()
    monitor.engine.dispose()


def _gauge(state: MonitorState, name: str, task: str) -> float | None:
    return state.registry.get_sample_value(name, {"task": task})


def test_the_last_success_counts_from_the_first_attempt_and_moves_only_on_success(
    state: MonitorState, frozen_clock: FrozenClock
) -> None:
    outcomes = iter([ValueError("boom"), None, ValueError("boom")])

    def flaky(_state: MonitorState) -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    state.jobs.add("flaky", 60, flaky)
    last = "driftloop_job_last_success_timestamp_seconds"
    assert _gauge(state, last, "flaky") is None, "nothing before the leader first runs it"
    first = frozen_clock.now().timestamp()
    state.jobs.run_job("flaky", state)  # fails
    assert _gauge(state, last, "flaky") == first
    frozen_clock.advance(60)
    state.jobs.run_job("flaky", state)  # succeeds
    assert _gauge(state, last, "flaky") == first + 60
    frozen_clock.advance(60)
    state.jobs.run_job("flaky", state)  # fails again: the last success stays
    assert _gauge(state, last, "flaky") == first + 60


def test_every_scheduled_task_exports_its_interval(state: MonitorState) -> None:
    state.jobs.start(state)
    intervals = {
        task: _gauge(state, "driftloop_job_interval_seconds", task) for task in state.jobs.jobs
    }
    assert intervals == {task: job.interval for task, job in state.jobs.jobs.items()}
    assert all(value > 0 for value in intervals.values())
