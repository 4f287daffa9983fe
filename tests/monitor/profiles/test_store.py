"""Profile buckets in the database: three grains at ingest, windows read back as sums."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from driftloop.monitor.profiles import add_buckets, read_window
from driftloop.store import DriftProfile, Model, make_engine, make_sessionmaker

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    with maker.begin() as session:
        session.add(
            Model(name="m", schema={}, schema_source="inferred", created_at=T0, updated_at=T0)
        )
    yield maker
    engine.dispose()


def _model_id(sessions) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return int(session.scalar(select(Model.id)))


def test_buckets_add_up_across_batches_and_grains(sessions) -> None:  # type: ignore[no-untyped-def]
    mid = _model_id(sessions)
    for minute in (0, 0, 1, 75):
        with sessions.begin() as session:
            ts = T0 + timedelta(minutes=minute)
            add_buckets(session, mid, "L", {("v1", "champion", ts): np.array([2.0, 1.0, 5.0])}, T0)
    with sessions() as session:
        rows = session.execute(
            select(DriftProfile.grain, func.count(), func.sum(DriftProfile.records)).group_by(
                DriftProfile.grain
            )
        ).all()
        assert {g: (n, total) for g, n, total in rows} == {
            "minute": (3, 8),
            "hour": (2, 8),
            "day": (1, 8),
        }
        window = read_window(session, mid, "L", 3, T0, T0 + timedelta(minutes=2))
        np.testing.assert_allclose(window[("v1", "champion")], [6.0, 3.0, 15.0])
        day = read_window(session, mid, "L", 3, T0 - timedelta(hours=10), T0 + timedelta(hours=14))
        np.testing.assert_allclose(day[("v1", "champion")], [8.0, 4.0, 20.0])
        assert read_window(session, mid, "other-layout", 3, T0, T0 + timedelta(hours=2)) == {}


def test_concurrent_writers_lose_no_update(sessions) -> None:  # type: ignore[no-untyped-def]
    mid = _model_id(sessions)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(10):
                with sessions.begin() as session:
                    add_buckets(session, mid, "L", {("v1", "champion", T0): np.ones(3)}, T0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with sessions() as session:
        window = read_window(session, mid, "L", 3, T0, T0 + timedelta(minutes=1))
    np.testing.assert_allclose(window[("v1", "champion")], [40.0] * 3)
