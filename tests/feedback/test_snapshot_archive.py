"""Snapshots with ``include_archive``: labeled rows pruned to the archive come back in the
snapshot as they were, a late label for a pruned record joins it, and a day that is both archived
and still in the database is not counted twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftloop.cli import app as cli
from driftloop.clock import FrozenClock
from driftloop.feedback import read_snapshot
from driftloop.monitor.retention import archive_for, retention_policy
from driftloop.server import create_app
from driftloop.settings import JobSettings, RetentionSettings, Settings
from driftloop.store.archive import Archive
from driftloop.store.retention import prune
from tests.feedback.support import CLASSES, T0, send_labels
from tests.feedback.test_snapshots import setup_model

PRUNE_AT = T0 + timedelta(days=30)


@pytest.fixture
def archive_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
        retention_days=10,
        retention=RetentionSettings(archive_url=str(tmp_path / "archive"), pause_seconds=0),
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def monitor(archive_settings: Settings, clock: FrozenClock) -> Iterator[TestClient]:
    app = create_app(archive_settings, clock=clock)
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


def snapshot(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/models/pets/datasets", json={"include_reference": False, **body})
    assert response.status_code == 201, response.text
    manifest: dict[str, Any] = response.json()
    return manifest


def rows(manifest: dict[str, Any]) -> pd.DataFrame:
    frame = read_snapshot(manifest)
    return frame.sort_values("request_id").reset_index(drop=True)


def test_pruned_labeled_rows_come_back_from_the_archive_with_late_labels(
    monitor: TestClient, archive_settings: Settings, clock: FrozenClock
) -> None:
    setup_model(monitor)
    before = rows(snapshot(monitor))
    state = monitor.app.state.driftloop  # type: ignore[attr-defined]

    report = prune(
        state.engine,
        retention_policy(archive_settings),
        PRUNE_AT,
        archive=archive_for(state.settings),
    )
    assert report.rows()["records"] == 7
    clock.advance(PRUNE_AT - T0)
    send_labels(monitor, [{"model": "pets", "request_id": "r5", "label": CLASSES[2]}])  # late

    response = monitor.post("/v1/models/pets/datasets", json={"include_reference": False})
    assert response.status_code == 422, "without the archive nothing is left to snapshot"
    manifest = snapshot(monitor, include_archive=True)
    after = rows(manifest)

    late = after[after["request_id"] == "r5"]
    assert late["label"].tolist() == [CLASSES[2]]
    assert late["size"].tolist() == [5.0]
    pd.testing.assert_frame_equal(
        after[after["request_id"] != "r5"].reset_index(drop=True), before, check_dtype=False
    )
    assert manifest["filters"]["include_archive"] is True
    assert manifest["archive"]["days"] == ["2026-05-01"]
    assert manifest["archive"]["records"] == 7
    assert manifest["label_coverage"]["predictions"] == 7


def test_a_day_archived_but_still_in_the_database_is_not_counted_twice(
    monitor: TestClient, archive_settings: Settings, clock: FrozenClock
) -> None:
    setup_model(monitor)
    before = rows(snapshot(monitor))
    state = monitor.app.state.driftloop  # type: ignore[attr-defined]
    archive = Archive(archive_settings.retention.archive_url)
    model_id = 1
    assert archive.archive_day(state.engine, (model_id, "pets"), T0.date())
    assert archive.written, "the day was archived"

    clock.advance(timedelta(seconds=1))  # another snapshot, not the same one asked twice
    manifest = snapshot(monitor, include_archive=True)
    pd.testing.assert_frame_equal(rows(manifest), before, check_dtype=False)
    assert manifest["archive"]["labeled"] == 0


def test_include_archive_without_an_archive_is_refused(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        setup_model(client)
        response = client.post("/v1/models/pets/datasets", json={"include_archive": True})
    app.state.driftloop.engine.dispose()
    assert response.status_code == 422, response.text
    assert "ARCHIVE_URL" in response.text


def test_the_cli_exports_archived_rows_and_prune_json_says_what_was_archived(
    monitor: TestClient, archive_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_model(monitor)
    monkeypatch.setenv("DRIFTLOOP_RETENTION__ARCHIVE_URL", archive_settings.retention.archive_url)
    monkeypatch.setenv("DRIFTLOOP_DATABASE_URL", archive_settings.database_url)
    runner = CliRunner()
    # The records are from 2026-05-01; a retention of one day prunes them today.
    result = runner.invoke(cli, ["db", "prune", "--retention-days", "1", "--json"])
    assert result.exit_code == 0, result.output
    import json

    archived = json.loads(result.stdout)["archive"]
    assert archived["url"] == archive_settings.retention.archive_url
    assert archived["rows"]["records"] == 7
    assert archived["rows"]["labels"] == 5
    assert len(archived["files"]) == 2
    assert archived["bytes"] > 0
    assert all(Path(f.removeprefix("file://")).exists() for f in archived["files"])

    out = tmp_path / "exported"
    args = ["dataset", "export", "--model", "pets", "--out", str(out), "--json"]
    result = runner.invoke(cli, [*args, "--no-reference", "--include-archive"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["sources"]["production"] == 5
