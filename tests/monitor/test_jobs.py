"""Periodic jobs: what they export for the stale-results alert (DriftloopJobStale)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, make_url, text

from driftloop.clock import FrozenClock
from driftloop.settings import Settings
from driftloop.store import make_engine
from driftloop.web.jobs import JobRunner
from driftloop.web.metrics import MonitorMetrics
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


@pytest.fixture
def runners(pg_database_url: str) -> Iterator[Callable[[str], JobRunner[None]]]:
    """Job runners on one PostgreSQL database, each with its own engine (as replicas have)."""
    made: list[JobRunner[None]] = []

    def runner(name: str) -> JobRunner[None]:
        url = make_url(pg_database_url).update_query_dict({"application_name": name})
        engine = make_engine(url.render_as_string(hide_password=False))
        made.append(JobRunner(engine, MonitorMetrics(CollectorRegistry(), "test"), FrozenClock()))
        return made[-1]

    yield runner
    for job_runner in made:
        job_runner.stop()
        job_runner.engine.dispose()


def leader_gauge(runner: JobRunner[None]) -> float:
    """What the runner's ``driftloop_leader`` says."""
    (family,) = runner.metrics.leader.collect()
    return family.samples[0].value


def test_a_stopped_leader_frees_the_lock_even_if_its_engine_lives_on(
    runners: Callable[[str], JobRunner[None]],
) -> None:
    first, second = runners("replica-1"), runners("replica-2")
    assert first.is_leader()
    assert not second.is_leader()
    assert (leader_gauge(first), leader_gauge(second)) == (1, 0)
    first.stop()  # its engine and pool stay: the lock must not stay behind in a pooled session
    assert second.is_leader()
    assert not first.is_leader()
    assert (leader_gauge(first), leader_gauge(second)) == (0, 1)


def test_a_leader_whose_connection_is_ended_stops_leading_and_another_takes_over(
    runners: Callable[[str], JobRunner[None]], pg_database_url: str, pg_admin: Engine
) -> None:
    first, second = runners("replica-1"), runners("replica-2")
    assert first.is_leader()
    with pg_admin.connect() as connection:
        # With a timeout, pg_terminate_backend returns once the server process is gone (and
        # its locks with it), so the checks below do not race the server.
        ended = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 30000)) "
                "FROM pg_stat_activity WHERE datname = :db AND application_name = 'replica-1'"
            ),
            {"db": make_url(pg_database_url).database},
        ).scalar_one()
    assert ended >= 1
    assert not first.is_leader(), "the lost lock is noticed at the next check"
    assert second.is_leader()
    assert not first.is_leader(), "the old leader comes back as a follower"
