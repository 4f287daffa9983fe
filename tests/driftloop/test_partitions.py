"""Day partitions on PostgreSQL (migration 0011): the migration keeps every row both ways, ingest
lands in the day's partition (strays in the default one, counted), retention drops whole old
days with their labels and keeps the new ones, ingest during the drop loses nothing, and the
leader's partitions job is idempotent. On SQLite every partition function is a no-op."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from driftloop.clock import FrozenClock
from driftloop.monitor.partitions import JOB_NAME, PartitionJob
from driftloop.store import make_engine, upgrade
from driftloop.store.migrate import alembic_config
from driftloop.store.partitions import (
    PARTITIONED,
    default_partition_rows,
    ensure_all,
    ensure_partitions,
    is_partitioned,
    list_partitions,
)
from driftloop.store.retention import prune
from tests.driftloop import test_retention
from tests.driftloop.test_retention import (
    NEW,
    NOW,
    OLD,
    fill,
    policy,
    record,
    send,
    state,
    stored,
)

clock = test_retention.clock
client = test_retention.client


@pytest.fixture
def database_url(pg_database_url: str) -> str:
    """PostgreSQL only: partitions exist nowhere else."""
    return pg_database_url


def _ready(client: TestClient, first: date, days: int) -> None:
    with state(client).engine.begin() as connection:
        ensure_all(connection, first, days)


def _where(connection: Connection, table: str, column: str, value: str) -> str:
    return str(
        connection.scalar(
            text(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = :v"), {"v": value}
        )
    )


# The migration ---------------------------------------------------------------------------------

CHECKSUMS = {
    table: "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) "
    f"FROM {table} t"
    for table in (*PARTITIONED, "labels")
}


@pytest.fixture
def scratch(pg_admin: Engine) -> Iterator[Engine]:
    name = f"partitions_19a_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(pg_admin.url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _checksums(engine: Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as connection:
        return {t: tuple(connection.execute(text(q)).one()) for t, q in CHECKSUMS.items()}  # type: ignore[misc]


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_migration_partitions_by_day_and_back_with_every_row(scratch: Engine) -> None:
    upgrade(scratch, "0010")
    with scratch.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO models (id, name, schema, schema_source, created_at, updated_at) "
            "VALUES (1, 'pets', '{}', 'inferred', now(), now())"
        )
        # 600 records over 40 days (one a day more than an hour apart), labels for a third,
        # profiles and flagged records on the same days.
        connection.exec_driver_sql(
            "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, outputs, "
            "latency_ms, status, received_at) SELECT 1, 'v1', 'champion', 'r' || g, "
            "timestamptz '2026-10-01 00:30+00' + mod(g, 40) * interval '1 day' "
            "+ g * interval '1 second', json_build_object('x', g), '{\"y\": 1}', g / 7.0, 200, "
            "timestamptz '2026-11-15 00:00+00' FROM generate_series(1, 600) g"
        )
        connection.exec_driver_sql(
            "INSERT INTO labels (model_id, request_id, label, label_ts, received_at, updated_at, "
            "corrections) SELECT 1, 'r' || g, to_jsonb(g), now(), now(), now(), 0 "
            "FROM generate_series(1, 600, 3) g"
        )
        connection.exec_driver_sql(
            "INSERT INTO drift_profiles (model_id, layout, version, variant, grain, start, "
            "records, data, updated_at) SELECT 1, 'x', 'v1', 'champion', 'day', "
            "timestamptz '2026-10-01 00:00+00' + g * interval '1 day', g, '\\x00', now() "
            "FROM generate_series(0, 39) g"
        )
        connection.exec_driver_sql(
            "INSERT INTO drift_ood_records (model_id, version, variant, request_id, ts, features) "
            "SELECT 1, 'v1', 'champion', 'r' || g, timestamptz '2026-10-01 12:00+00' "
            "+ mod(g, 40) * interval '1 day', '{\"names\": [\"x\"]}' FROM generate_series(1, 80) g"
        )
    before = _checksums(scratch)
    assert before["records"][0] == 600

    upgrade(scratch)

    assert _checksums(scratch) == before
    with scratch.connect() as connection:
        for table in PARTITIONED:
            assert is_partitioned(connection, table)
            days = [p for p in list_partitions(connection, table) if not p.is_default]
            assert len(days) >= 40
            assert all(p.upper - p.lower == timedelta(days=1) for p in days)  # type: ignore[operator]
        assert _where(connection, "records", "request_id", "r1") == "records_p20261002"
        assert default_partition_rows(connection) == dict.fromkeys(PARTITIONED, 0)
        # the keys: the unique key contains ts; a re-sent record (same ts) is still refused
        keys = connection.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'records'::regclass "
                "ORDER BY conname"
            )
        ).scalars()
        assert list(keys) == ["pk_records", "uq_records_request_id_model_id_variant_ts"]
    with scratch.begin() as connection:
        again = connection.exec_driver_sql(
            "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, outputs, "
            "latency_ms, status, received_at) SELECT model_id, version, variant, request_id, ts, "
            "inputs, outputs, latency_ms, status, received_at FROM records "
            "ON CONFLICT DO NOTHING"
        )
        assert again.rowcount == 0
        # new rows take ids after the copied ones (the sequence moved over)
        new_id = connection.exec_driver_sql(
            "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, outputs, "
            "latency_ms, status, received_at) VALUES (1, 'v1', 'champion', 'fresh', now(), "
            "'{}', '{}', 1, 200, now()) RETURNING id"
        ).scalar()
        assert new_id is not None
        assert new_id > 600
        connection.exec_driver_sql("DELETE FROM records WHERE request_id = 'fresh'")

    _downgrade(scratch, "0010")

    assert _checksums(scratch) == before
    with scratch.connect() as connection:
        for table in PARTITIONED:
            assert not is_partitioned(connection, table)
            assert list_partitions(connection, table) == []
        leftovers = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_class WHERE relname ~ '_(p[0-9]{8}|default|0010|0011)$'"
        ).scalar()
        assert leftovers == 0
    upgrade(scratch)  # and up again
    assert _checksums(scratch) == before


def test_the_downgrade_keeps_the_first_of_records_only_the_partitioned_key_told_apart(
    scratch: Engine,
) -> None:
    upgrade(scratch)
    with scratch.begin() as connection:
        for ts in ("2026-12-01 10:00+00", "2026-12-02 10:00+00"):  # same request, two times
            connection.exec_driver_sql(
                "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, "
                "outputs, latency_ms, status, received_at) VALUES (1, 'v1', 'champion', 'twice', "
                f"'{ts}', '{{}}', '{{}}', 1, 200, now())"
            )
    _downgrade(scratch, "0010")
    with scratch.connect() as connection:
        kept = connection.exec_driver_sql("SELECT ts FROM records").scalars().all()
    assert kept == [datetime(2026, 12, 1, 10, tzinfo=UTC)]


# Ingest and the default partition --------------------------------------------------------------


def test_ingest_lands_in_the_days_partition_and_strays_in_the_default_counted(
    client: TestClient, clock: FrozenClock
) -> None:
    _ready(client, OLD.date(), 2)
    future = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)
    send(client, [record("on-time", OLD), record("far-off", future)])
    send(client, [record("on-time", OLD)])  # a re-send is still dropped
    registry = state(client).registry
    with state(client).engine.connect() as connection:
        assert _where(connection, "records", "request_id", "on-time") == "records_p20260501"
        assert _where(connection, "records", "request_id", "far-off") == "records_default"
        assert connection.scalar(text("SELECT count(*) FROM records")) == 2
    assert (
        registry.get_sample_value("driftloop_store_default_partition_rows", {"table": "records"})
        == 1
    )
    assert registry.get_sample_value("driftloop_store_partitions", {"table": "records"}) >= 3

    # The day's partition created later takes its rows out of the default one.
    with state(client).engine.begin() as connection:
        assert ensure_partitions(connection, "records", future.date(), 0) == ["records_p20310102"]
    with state(client).engine.connect() as connection:
        assert _where(connection, "records", "request_id", "far-off") == "records_p20310102"
        assert default_partition_rows(connection)["records"] == 0


def test_the_partitions_job_creates_days_ahead_once(client: TestClient, clock: FrozenClock) -> None:
    assert JOB_NAME in state(client).jobs.jobs
    job = PartitionJob()
    first = job.run(state(client))
    ahead = state(client).settings.retention.partitions_ahead_days
    assert first["records"] == [
        f"records_p{OLD.date() + timedelta(days=n):%Y%m%d}" for n in range(ahead + 1)
    ]
    assert set(first) == set(PARTITIONED)
    with state(client).engine.connect() as connection:
        listed = {t: list_partitions(connection, t) for t in PARTITIONED}
    assert job.run(state(client)) == {t: [] for t in PARTITIONED}
    with state(client).engine.connect() as connection:
        assert {t: list_partitions(connection, t) for t in PARTITIONED} == listed


def test_the_partitions_job_runs_with_the_prune_turned_off(
    database_url: str, tmp_path: Any
) -> None:
    from prometheus_client import CollectorRegistry

    from driftloop.monitor.retention import JOB_NAME as PRUNE_JOB
    from driftloop.server import create_app
    from driftloop.settings import JobSettings, RetentionSettings, Settings

    settings = Settings(
        database_url=database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
        retention=RetentionSettings(enabled=False),
    )
    app = create_app(settings, registry=CollectorRegistry(auto_describe=True))
    try:
        jobs = app.state.driftloop.jobs.jobs
        assert JOB_NAME in jobs
        assert PRUNE_JOB not in jobs
    finally:
        app.state.driftloop.engine.dispose()


# Retention -------------------------------------------------------------------------------------


def test_retention_drops_whole_old_days_and_keeps_new_rows_and_their_labels(
    client: TestClient, clock: FrozenClock
) -> None:
    _ready(client, OLD.date(), (NOW - OLD).days + 1)
    fill(client, clock)
    dry = prune(state(client).engine, policy(), NOW, dry_run=True)
    report = prune(state(client).engine, policy(), NOW)

    records, labels = stored(client)
    assert records == {(f"new-{i}", "champion") for i in range(20)} | {("old-0", "shadow")}
    assert labels == {f"new-{i}" for i in range(10)} | {"old-0", "ghost-new"}
    # Every day partition older than the cutoff goes; three of them held rows.
    dropped = {(p.table, p.name, p.rows) for p in report.partitions if p.rows}
    assert dropped == {
        ("records", "records_p20260501", 30),
        ("drift_profiles", "drift_profiles_p20260501", 2),
        ("drift_ood_records", "drift_ood_records_p20260501", 2),
    }
    assert all(p.bytes > 0 for p in report.partitions)
    assert {p.upper for p in report.partitions} == {
        datetime(2026, 5, d, tzinfo=UTC) for d in range(2, 22)
    }  # the cutoff, 05-21 12:00, falls in the next day: deleted by rows
    by_reason = {(s.table, s.reason): s.rows for s in report.steps}
    assert by_reason[("records", "older than the retention")] == 0  # all went with the day
    assert by_reason[("labels", "their records were pruned")] == 10  # old-1..9 and old-29
    assert report.rows() == {
        "records": 30,
        "labels": 11,
        "drift_profiles": 2,
        "drift_ood_records": 2,
    }
    as_json = report.as_dict()
    assert {p["name"] for p in as_json["partitions"]} == {p.name for p in report.partitions}
    assert as_json["tables"]["records"]["partitions"] == 20
    # The dry run named the same partitions and counted the same rows.
    assert [p.as_dict() for p in dry.partitions] == [p.as_dict() for p in report.partitions]
    assert dry.rows() == report.rows()
    with state(client).engine.connect() as connection:
        names = {p.name for t in PARTITIONED for p in list_partitions(connection, t)}
    assert not {p.name for p in report.partitions} & names
    assert "records_p20260530" in names
    assert prune(state(client).engine, policy(), NOW).total_rows == 0, "a second prune: nothing"


def test_the_boundary_day_and_the_default_partition_go_by_delete(
    client: TestClient, clock: FrozenClock
) -> None:
    cut = NOW - policy().records  # 2026-05-21 12:00: its day partition stays whole
    _ready(client, cut.date(), 0)
    send(client, [record("before-cut", cut - timedelta(hours=1))])
    send(client, [record("after-cut", cut + timedelta(hours=1))])
    send(client, [record("stray", OLD)])  # no partition for its day: in the default one
    clock.advance(NOW - OLD)
    report = prune(state(client).engine, policy(), NOW)
    assert report.partitions == []
    assert report.rows()["records"] == 2
    assert stored(client)[0] == {("after-cut", "champion")}


def test_ingest_while_partitions_are_dropped_loses_nothing(
    client: TestClient, clock: FrozenClock
) -> None:
    _ready(client, OLD.date(), (NOW - OLD).days + 1)
    send(client, [record(f"old-{i}", OLD) for i in range(300)])
    clock.advance(NOW - OLD)
    started, halfway = threading.Event(), threading.Event()
    batches = 20
    failures: list[BaseException] = []

    def ingest() -> None:
        try:
            started.wait()
            for b in range(batches):
                send(client, [record(f"live-{b}-{i}", NEW) for i in range(25)])
                if b == batches // 2:
                    halfway.set()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            halfway.set()

    def before_drop(_c: Connection, table: str, _name: str, _lo: Any, _hi: Any) -> None:
        if table == "records":  # the drop then runs while the second half is sent
            started.set()
            halfway.wait(timeout=60)

    sender = threading.Thread(target=ingest)
    sender.start()
    try:
        report = prune(state(client).engine, policy(batch_rows=10), NOW, before_drop=before_drop)
    finally:
        started.set()
        sender.join()
    assert not failures, failures
    assert "records_p20260501" in [p.name for p in report.partitions if p.table == "records"]
    assert report.rows()["records"] == 300
    records, _ = stored(client)
    assert records == {(f"live-{b}-{i}", "champion") for b in range(batches) for i in range(25)}


def test_two_prunes_at_once_drop_each_partition_once(
    client: TestClient, clock: FrozenClock
) -> None:
    # The leader's job and a manual `driftloop db prune`, both at the same partition.
    _ready(client, OLD.date(), 2)
    send(client, [record(f"old-{i}", OLD) for i in range(12)])
    send(client, [record(f"next-{i}", OLD + timedelta(days=1)) for i in range(8)])
    clock.advance(NOW - OLD)
    together = threading.Barrier(2, timeout=60)
    reports: list[Any] = []
    failures: list[BaseException] = []

    def at_once(_c: Connection, table: str, name: str, _lo: Any, _hi: Any) -> None:
        if name == "records_p20260501":
            together.wait()  # both have listed it: both are about to drop it

    def run() -> None:
        try:
            reports.append(prune(state(client).engine, policy(), NOW, before_drop=at_once))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            together.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    names = [p.name for r in reports for p in r.partitions if p.table == "records"]
    assert len(names) == len(set(names)), names  # no partition dropped twice
    assert "records_p20260501" in names  # the one both went for: dropped by one of them
    # The next day is dropped by the first, or (when the second's DELETE pass got there first,
    # or the first's drop waited past its lock timeout on a busy machine) deleted row by row:
    # which one is a race, that nothing is left is not. (Partition rows are the planner's
    # estimate, so their sum is not compared.)
    assert stored(client)[0] == set()


def test_a_failing_archive_hook_keeps_the_partition(client: TestClient, clock: FrozenClock) -> None:
    _ready(client, OLD.date(), 1)
    send(client, [record(f"old-{i}", OLD) for i in range(5)])
    clock.advance(NOW - OLD)

    def broken(_c: Connection, table: str, _name: str, _lo: Any, _hi: Any) -> None:
        if table == "records":
            raise OSError("archive unreachable")

    report = prune(state(client).engine, policy(), NOW, before_drop=broken)
    assert [p.table for p in report.partitions if p.table == "records"] == []
    assert report.rows()["records"] == 0  # nor deleted row by row
    assert len(stored(client)[0]) == 5


# SQLite ----------------------------------------------------------------------------------------


def test_on_sqlite_every_partition_function_is_a_no_op(sqlite_database_url: str) -> None:
    engine = make_engine(sqlite_database_url)
    try:
        with engine.begin() as connection:
            assert ensure_all(connection, date(2026, 5, 1), 3) == {t: [] for t in PARTITIONED}
            assert list_partitions(connection, "records") == []
            assert default_partition_rows(connection) == {}
            assert not is_partitioned(connection, "records")
    finally:
        engine.dispose()


# The command -----------------------------------------------------------------------------------


def test_db_prune_lists_the_partitions_it_would_drop_and_then_drops_them(
    pg_database_url: str, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app
    from tests.driftloop.cli.test_db_prune import _fill

    day = (datetime.now(UTC) - timedelta(days=60)).date()
    engine = make_engine(pg_database_url)
    with engine.begin() as connection:
        ensure_partitions(connection, "records", day, 0)
    _fill(pg_database_url, tmp_path)  # 40 records 60 days old, 10 an hour old
    args = ["db", "prune", "--database-url", pg_database_url, "--retention-days", "30"]
    runner = CliRunner()
    try:
        dry = runner.invoke(app, [*args, "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        report = json.loads(dry.stdout)
        name = f"records_p{day:%Y%m%d}"
        assert [(p["name"], p["rows"]) for p in report["partitions"]] == [(name, 40)]
        assert report["tables"]["records"] == report["tables"]["records"] | {
            "rows": 40,
            "partitions": 1,
        }
        with engine.connect() as connection:
            assert name in {p.name for p in list_partitions(connection, "records")}

        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert "dropped 40 rows older than 30 days" in done.stdout
        assert name in done.stdout
        with engine.connect() as connection:
            assert name not in {p.name for p in list_partitions(connection, "records")}
            assert connection.scalar(text("SELECT count(*) FROM records")) == 10
    finally:
        engine.dispose()
