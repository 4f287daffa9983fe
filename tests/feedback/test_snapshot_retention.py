"""Snapshot retention: old snapshots go (folder and row), pinned ones stay, failures keep rows."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fsspec.implementations.local import LocalFileSystem
from sqlalchemy import select

from driftloop.clock import FrozenClock
from driftloop.feedback.component import SNAPSHOT_JOB
from driftloop.feedback.snapshot_retention import prune_snapshots
from driftloop.server import create_app
from driftloop.settings import Settings
from driftloop.store import Model, SnapshotRow
from driftloop.store.registry import Role, set_version
from tests.feedback.support import later
from tests.feedback.test_snapshots import setup_model


def _snapshots(app_state: object) -> dict[str, str]:
    with app_state.sessions() as session:  # type: ignore[attr-defined]
        return dict(session.execute(select(SnapshotRow.snapshot_id, SnapshotRow.uri)).all())


def test_old_snapshots_go_and_the_ones_a_version_trained_on_stay(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "snapshots"
    clock = FrozenClock(later(3600))
    app = create_app(settings.model_copy(update={"snapshot_dir": str(out)}), clock=clock)
    state = app.state.driftloop
    with TestClient(app) as client:
        setup_model(client)
        made = []
        for _ in range(3):  # three snapshots a day apart
            response = client.post("/v1/models/pets/datasets", json={"out": str(out)})
            assert response.status_code == 201, response.text
            made.append(response.json())
            clock.advance(timedelta(days=1))
    old, pinned, new = (manifest["snapshot_id"] for manifest in made)
    with state.sessions.begin() as session:
        model = session.scalar(select(Model).where(Model.name == "pets"))
        set_version(
            session, model, "v9", Role.challenger, None, clock.now(), {"snapshot_id": pinned}
        )
    assert sorted(os.listdir(out)) == sorted([old, pinned, new])

    cutoff_at = clock.now() - timedelta(days=1, hours=12)  # between the second and the third
    dry = prune_snapshots(state.engine, cutoff_at, dry_run=True)
    assert (dry.removed, dry.pinned, dry.failed) == ([old], [pinned], {})
    assert dry.bytes > 0
    assert sorted(os.listdir(out)) == sorted([old, pinned, new]), "a dry run removes nothing"

    report = prune_snapshots(state.engine, cutoff_at)
    assert (report.removed, report.pinned) == ([old], [pinned])
    assert report.bytes == dry.bytes
    assert sorted(os.listdir(out)) == sorted([pinned, new])
    assert set(_snapshots(state)) == {pinned, new}
    assert prune_snapshots(state.engine, cutoff_at).removed == [], "idempotent"
    state.engine.dispose()


def test_a_folder_that_cannot_be_removed_keeps_its_row(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "snapshots"
    clock = FrozenClock(later(3600))
    app = create_app(settings.model_copy(update={"snapshot_dir": str(out)}), clock=clock)
    state = app.state.driftloop
    with TestClient(app) as client:
        setup_model(client)
        snapshot_id = client.post("/v1/models/pets/datasets", json={"out": str(out)}).json()[
            "snapshot_id"
        ]

    # Tests run as root here, where permissions do not stop a removal: the file system refuses.
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(out / snapshot_id))

    with monkeypatch.context() as patch:
        patch.setattr(LocalFileSystem, "rm", refuse)
        report = prune_snapshots(state.engine, clock.now() + timedelta(days=1))
    assert report.removed == []
    assert list(report.failed) == [snapshot_id]
    assert set(_snapshots(state)) == {snapshot_id}
    assert prune_snapshots(state.engine, clock.now() + timedelta(days=1)).removed == [snapshot_id]
    state.engine.dispose()


def test_the_leader_prunes_snapshots_only_when_they_have_a_retention(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "snapshots"
    clock = FrozenClock(later(3600))
    kept_forever = create_app(settings.model_copy(update={"snapshot_dir": str(out)}), clock=clock)
    assert SNAPSHOT_JOB not in kept_forever.state.driftloop.jobs.jobs
    kept_forever.state.driftloop.engine.dispose()

    retention = settings.retention.model_copy(update={"snapshot_days": 2})
    app = create_app(
        settings.model_copy(update={"snapshot_dir": str(out), "retention": retention}), clock=clock
    )
    state = app.state.driftloop
    with TestClient(app) as client:
        setup_model(client)
        snapshot_id = client.post("/v1/models/pets/datasets", json={"out": str(out)}).json()[
            "snapshot_id"
        ]
        clock.advance(timedelta(days=1))
        state.jobs.run_job(SNAPSHOT_JOB, state)
        assert set(_snapshots(state)) == {snapshot_id}, "younger than its retention"
        clock.advance(timedelta(days=2))
        state.jobs.run_job(SNAPSHOT_JOB, state)
        assert _snapshots(state) == {}
        assert not (out / snapshot_id).exists()
        metrics = client.get("/metrics").text
        assert 'driftloop_dataset_snapshots_pruned_total{outcome="removed"} 1.0' in metrics
        assert 'driftloop_dataset_snapshots_pruned_total{outcome="failed"} 0.0' in metrics
    state.engine.dispose()
