"""Retention on SQLite and PostgreSQL: what is older than the settings keep goes, in batches,
with its labels; what is newer stays, with its labels; a dry run counts the same rows and deletes
nothing; ingest running during a prune loses nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import func, insert, select

from driftloop.clock import FrozenClock
from driftloop.settings import JobSettings, RetentionSettings, Settings
from driftloop.store import DriftProfile, LabelRow, OodRecord, RecordRow
from driftloop.store.retention import RetentionPolicy, prune

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
OLD = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # 30 days before NOW
NEW = datetime(2026, 5, 30, 12, 0, tzinfo=UTC)  # 1 day before NOW
DAYS = 10


def record(request_id: str, at: datetime, variant: str = "champion") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "model": "pets",
        "version": "v1",
        "variant": variant,
        "timestamp": at.isoformat(),
        "inputs": {"size": 1.0, "color": "red"},
        "outputs": {"prediction": "cat"},
        "latency_ms": 2.0,
        "status": 200,
    }


def send(client: TestClient, records: list[dict[str, Any]]) -> None:
    body = {"batch_id": uuid.uuid4().hex, "source": "test", "records": records}
    response = client.post("/v1/records", json=body)
    assert response.status_code == 200, response.text


def label(client: TestClient, request_id: str, model: str | None = "pets") -> None:
    body: dict[str, Any] = {"request_id": request_id, "label": "cat"}
    if model is not None:
        body["model"] = model
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(OLD)


@pytest.fixture
def client(database_url: str, tmp_path: Any, clock: FrozenClock) -> Iterator[TestClient]:
    from driftloop.server import create_app

    settings = Settings(
        database_url=database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
        retention_days=DAYS,
        retention=RetentionSettings(batch_rows=7, pause_seconds=0),  # several small batches
    )
    app = create_app(settings, clock=clock, registry=CollectorRegistry(auto_describe=True))
    with TestClient(app) as test_client:
        yield test_client
    app.state.driftloop.engine.dispose()


def state(client: TestClient) -> Any:
    return client.app.state.driftloop  # type: ignore[attr-defined]


def stored(client: TestClient) -> tuple[set[tuple[str, str]], set[str]]:
    """Stored (request id, variant) of records, and request ids of labels."""
    with state(client).sessions() as session:
        records = {
            (r, v) for r, v in session.execute(select(RecordRow.request_id, RecordRow.variant))
        }
        labels = set(session.scalars(select(LabelRow.request_id)))
    return records, labels


def fill(client: TestClient, clock: FrozenClock) -> None:
    """30 old records (10 labeled), 20 new ones (10 labeled); one old request also answered by a
    new shadow copy (its label stays); a pending label received long ago and one received now."""
    send(client, [record(f"old-{i}", OLD) for i in range(30)])
    send(client, [record("old-0", NEW, variant="shadow")])
    for i in range(10):
        label(client, f"old-{i}")
    label(client, "ghost-old", model=None)  # no record ever shows it
    clock.advance(NOW - OLD)
    send(client, [record(f"new-{i}", NEW) for i in range(20)])
    for i in range(10):
        label(client, f"new-{i}")
    label(client, "ghost-new", model=None)
    label(client, "old-29")  # a late label for a record about to be pruned
    with state(client).sessions.begin() as session:
        model_id = session.scalar(select(RecordRow.model_id).limit(1))
        for start in (OLD, NEW):
            for grain in ("minute", "day"):
                session.add(
                    DriftProfile(
                        model_id=model_id,
                        layout="x",
                        version="v1",
                        variant="champion",
                        grain=grain,
                        start=start,
                        records=1,
                        data=b"",
                        updated_at=start,
                    )
                )
        session.execute(
            insert(OodRecord),
            [
                {"model_id": model_id, "version": "v1", "variant": "champion"}
                | {"request_id": f"ood-{i}", "ts": at, "features": {"names": ["size"]}}
                for i, at in enumerate([OLD, OLD, NEW])
            ],
        )


def policy(batch_rows: int = 7) -> RetentionPolicy:
    days = timedelta(days=DAYS)
    return RetentionPolicy(
        records=days,
        pending_labels=days,
        profiles=days,
        ood_records=days,
        minute_profiles=timedelta(hours=50),
        batch_rows=batch_rows,
    )


def test_old_records_and_their_labels_go_and_new_ones_stay_with_their_labels(
    client: TestClient, clock: FrozenClock
) -> None:
    fill(client, clock)
    report = prune(state(client).engine, policy(), NOW)

    records, labels = stored(client)
    assert records == {(f"new-{i}", "champion") for i in range(20)} | {("old-0", "shadow")}
    # old-0 keeps its label: its new shadow copy still joins it. ghost-new is pending but young.
    assert labels == {f"new-{i}" for i in range(10)} | {"old-0", "ghost-new"}
    by_reason = {(s.table, s.reason): s.rows for s in report.steps}
    assert by_reason[("records", "older than the retention")] == 30
    assert by_reason[("labels", "their records were pruned")] == 10  # old-1..9 and old-29
    assert by_reason[("labels", "pending past their window")] == 1  # ghost-old
    assert by_reason[("drift_profiles", "minute buckets past their window")] == 1
    assert by_reason[("drift_profiles", "older than the retention")] == 1  # the old day bucket
    assert by_reason[("drift_ood_records", "older than the retention")] == 2
    with state(client).sessions() as session:
        assert session.scalar(select(func.count()).select_from(DriftProfile)) == 2
        assert set(session.scalars(select(OodRecord.request_id))) == {"ood-2"}
    assert report.rows() == {
        "records": 30,
        "labels": 11,
        "drift_profiles": 2,
        "drift_ood_records": 2,
    }
    assert report.database_bytes_before
    assert report.database_bytes_after
    assert prune(state(client).engine, policy(), NOW).total_rows == 0, "a second prune: nothing"


def test_a_dry_run_deletes_nothing_and_counts_what_the_prune_then_deletes(
    client: TestClient, clock: FrozenClock
) -> None:
    fill(client, clock)
    before = stored(client)
    dry = prune(state(client).engine, policy(), NOW, dry_run=True)
    assert stored(client) == before
    assert dry.bytes_after == {}
    assert dry.database_bytes_after is None
    real = prune(state(client).engine, policy(), NOW)
    assert [(s.table, s.reason, s.rows) for s in dry.steps] == [
        (s.table, s.reason, s.rows) for s in real.steps
    ]
    assert dry.total_rows == 45


def test_the_leader_job_prunes_and_the_store_metrics_show_rows_bytes_and_the_last_prune(
    client: TestClient, clock: FrozenClock
) -> None:
    fill(client, clock)
    registry = state(client).registry
    assert registry.get_sample_value("driftloop_store_rows", {"table": "records"}) == 51
    assert registry.get_sample_value("driftloop_store_last_prune_timestamp_seconds") is None
    assert registry.get_sample_value("driftloop_store_bytes", {"table": "_database"}) > 0

    state(client).jobs.run_job("prune", state(client))

    assert registry.get_sample_value("driftloop_store_last_prune_timestamp_seconds") == (
        NOW.timestamp()
    )
    pruned = "driftloop_store_pruned_rows_total"
    assert registry.get_sample_value(pruned, {"table": "records"}) == 30
    assert registry.get_sample_value(pruned, {"table": "labels"}) == 11
    kept = {(f"new-{i}", "champion") for i in range(20)} | {("old-0", "shadow")}
    assert stored(client)[0] == kept
    rows = registry.get_sample_value("driftloop_store_rows", {"table": "records"})
    if state(client).engine.dialect.name == "sqlite":
        assert rows == 21  # an exact count
    else:
        assert rows is not None  # PostgreSQL: the planner's estimate (ANALYZE refreshes it)
        assert registry.get_sample_value("driftloop_store_bytes", {"table": "records"}) > 0
    assert (
        registry.get_sample_value("driftloop_job_runs_total", {"task": "prune", "result": "ok"})
        == 1
    )


def test_records_ingested_while_the_prune_runs_are_all_kept(
    client: TestClient, clock: FrozenClock
) -> None:
    send(client, [record(f"old-{i}", OLD) for i in range(300)])
    clock.advance(NOW - OLD)
    started = threading.Event()
    batches = 20
    failures: list[BaseException] = []

    def ingest() -> None:
        try:
            started.wait()
            for b in range(batches):
                send(client, [record(f"live-{b}-{i}", NEW) for i in range(25)])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def progress(_table: str, _rows: int) -> None:
        started.set()  # the sender starts once the first batch of deletes committed

    sender = threading.Thread(target=ingest)
    sender.start()
    try:
        report = prune(state(client).engine, policy(batch_rows=10), NOW, progress=progress)
    finally:
        started.set()
        sender.join()
    assert not failures, failures
    records, _ = stored(client)
    assert report.rows()["records"] == 300
    assert records == {(f"live-{b}-{i}", "champion") for b in range(batches) for i in range(25)}


def test_pending_labels_have_their_own_window(client: TestClient, clock: FrozenClock) -> None:
    fill(client, clock)
    longer = RetentionPolicy(**{**policy().__dict__, "pending_labels": timedelta(days=45)})
    report = prune(state(client).engine, longer, NOW)
    by_reason = {(s.table, s.reason): s.rows for s in report.steps}
    assert by_reason[("labels", "pending past their window")] == 0
    assert {"ghost-old", "ghost-new"} <= stored(client)[1]


def test_a_policy_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="batch_rows must be positive, got 0"):
        policy(batch_rows=0)


def test_the_policy_follows_the_settings() -> None:
    from driftloop.monitor.retention import retention_policy

    lite = retention_policy(Settings(database_url="sqlite:///x.db", retention_days=7))
    assert lite.records == lite.pending_labels == lite.profiles == timedelta(days=7)
    assert lite.minute_profiles == timedelta(hours=50)
    assert lite.pause_seconds > 0, "SQLite's lock is not fair: waiting writers need a gap"
    pg = retention_policy(
        Settings(
            database_url="postgresql://u@h/db",
            retention=RetentionSettings(pending_label_days=2, batch_rows=100),
        )
    )
    assert pg.pending_labels == timedelta(days=2)
    assert pg.records == timedelta(days=30)
    assert pg.batch_rows == 100
    assert pg.pause_seconds == 0
