"""``driftloop db prune [--dry-run] [--json]``: says what it drops (or would), on both databases,
and exits 3 when the database is unreachable."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.settings import JobSettings, Settings
from driftloop.store import RecordRow, make_engine
from tests.procs import free_port

runner = CliRunner()


def _fill(database_url: str, tmp_path: Path) -> None:
    """40 records from 60 days ago and 10 from an hour ago, ingested through the monitor."""
    from driftloop.server import create_app

    now = datetime.now(UTC)
    settings = Settings(
        database_url=database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
    )
    monitor = create_app(settings)
    records: list[dict[str, Any]] = [
        {
            "request_id": f"{'old' if i < 40 else 'new'}-{i}",
            "model": "pets",
            "version": "v1",
            "variant": "champion",
            "timestamp": (now - (timedelta(days=60) if i < 40 else timedelta(hours=1))).isoformat(),
            "inputs": {"size": float(i)},
            "outputs": {"prediction": "cat"},
            "latency_ms": 1.0,
            "status": 200,
        }
        for i in range(50)
    ]
    with TestClient(monitor) as client:
        body = {"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
        assert client.post("/v1/records", json=body).status_code == 200
    monitor.state.driftloop.engine.dispose()


def _records(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(RecordRow)) or 0)
    finally:
        engine.dispose()


def test_a_dry_run_reports_what_would_go_as_json_and_the_prune_drops_it(
    database_url: str, tmp_path: Path
) -> None:
    _fill(database_url, tmp_path)
    args = ["db", "prune", "--database-url", database_url, "--retention-days", "30"]

    dry = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["tables"]["records"]["rows"] == 40
    assert _records(database_url) == 50, "a dry run deletes nothing"

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "dropped 40 rows older than 30 days" in done.stdout
    assert "records" in done.stdout
    assert _records(database_url) == 10


def test_an_unreachable_database_exits_3() -> None:
    dead = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    result = runner.invoke(app, ["db", "prune", "--database-url", dead, "--json"])
    assert result.exit_code == 3, result.output
    assert "cannot reach the database" in result.output


def test_snapshots_past_their_own_retention_are_listed_and_removed(
    database_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    from sqlalchemy import update

    from driftloop.server import create_app
    from driftloop.store import SnapshotRow
    from tests.feedback.test_snapshots import setup_model

    out = tmp_path / "snapshots"
    settings = Settings(
        database_url=database_url, jobs=JobSettings(enabled=False), snapshot_dir=str(out)
    )
    monitor = create_app(settings)
    with TestClient(monitor) as client:
        setup_model(client)
        made = client.post("/v1/models/pets/datasets", json={"out": str(out)})
        assert made.status_code == 201, made.text
    monitor.state.driftloop.engine.dispose()
    snapshot_id = made.json()["snapshot_id"]
    args = ["db", "prune", "--database-url", database_url, "--json"]
    kept = runner.invoke(app, [*args, "--dry-run"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["snapshots"] is None, "kept forever unless the setting is set"

    engine = make_engine(database_url)
    with engine.begin() as connection:  # the snapshot was written ten days ago
        ten_days_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=10)
        connection.execute(update(SnapshotRow).values(created_at=ten_days_ago))
    engine.dispose()

    monkeypatch.setenv("DRIFTLOOP_RETENTION__SNAPSHOT_DAYS", "7")
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["snapshots"]["snapshot_ids"] == [snapshot_id]
    assert os.listdir(out) == [snapshot_id], "a dry run removes nothing"

    done = runner.invoke(app, ["db", "prune", "--database-url", database_url])
    assert done.exit_code == 0, done.output
    assert "removed 1 (" in done.stdout
    assert os.listdir(out) == []
