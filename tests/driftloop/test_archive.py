"""Archive before drop, on SQLite and PostgreSQL: what the prune drops is in the archive, row for
row (JSON documents, timestamps with their zone); the Hive layout reads as one table; a changed
file fails its manifest; a failed archive keeps the rows and is counted; re-runs are idempotent
and a crash between the part and the manifest is cleaned up by the next run."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, insert, select

from driftloop.monitor.retention import StoreCollector
from driftloop.store import LabelRow, Model, RecordRow, make_engine
from driftloop.store.archive import (
    DOCUMENTS,
    MANIFEST,
    SCHEMAS,
    Archive,
    ArchiveIntegrityError,
    archive_day,
    read_partition,
    row_digest,
)
from driftloop.store.retention import RetentionPolicy, prune

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
DAY1 = datetime(2026, 5, 1, tzinfo=UTC)  # the first of three old days
KEEP = timedelta(days=10)


def policy() -> RetentionPolicy:
    return RetentionPolicy(
        records=KEEP, pending_labels=KEEP, profiles=KEEP, ood_records=KEEP, batch_rows=7
    )


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def inputs(i: int) -> dict[str, Any]:
    """Documents that a lossy archive would change: nesting, unicode, floats, null, bools."""
    return {
        "size": i + 0.1,
        "color": "rød ✓" if i % 2 else "blue",
        "tags": ["a", {"b": i}],
        "missing": None,
        "flag": bool(i % 3),
        "big": 2**53 + i,
    }


def fill(engine: Engine) -> int:
    """Model ``pets``: 30 records over 3 old days (ts with microseconds), 5 new ones; labels on
    every third record (old and new), one pending label joined by an old record. Returns the
    model id."""
    with engine.begin() as connection:
        model_id = connection.execute(
            insert(Model).returning(Model.id),
            [
                {
                    "name": "pets",
                    "schema": {},
                    "schema_source": "inferred",
                    "created_at": DAY1,
                    "updated_at": DAY1,
                }
            ],
        ).scalar_one()
        rows = []
        for i in range(35):
            at = DAY1 + timedelta(hours=i * 2.4, microseconds=i) if i < 30 else NOW
            rows.append(
                {
                    "model_id": model_id,
                    "version": "v1",
                    "variant": "shadow" if i % 5 == 4 else "champion",
                    "request_id": f"req-{i}",
                    "ts": at,
                    "inputs": inputs(i),
                    "outputs": {"prediction": "cat", "probabilities": {"cat": 0.25 + i / 100}},
                    "latency_ms": 1.5 + i,
                    "status": 200,
                    "received_at": at + timedelta(seconds=3),
                }
            )
        connection.execute(insert(RecordRow), rows)
        labels = [
            {
                "model_id": 0 if i == 3 else model_id,  # req-3's label came before its record
                "request_id": f"req-{i}",
                "label": {"nested": i} if i == 6 else ("cat" if i % 2 else i),
                "label_ts": DAY1 + timedelta(days=1),
                "received_at": DAY1 + timedelta(days=1),
                "updated_at": DAY1 + timedelta(days=1, seconds=i),
                "corrections": i % 2,
            }
            for i in range(0, 35, 3)
        ]
        connection.execute(insert(LabelRow), labels)
    return int(model_id)


def table_rows(engine: Engine, table: Any) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        return {row.id: dict(row._mapping) for row in connection.execute(select(table))}


def archived(root: str, table: str) -> list[dict[str, Any]]:
    """The archive's rows of ``table`` read as one Hive-partitioned dataset."""
    fs, path = fsspec.core.url_to_fs(root)
    dataset = ds.dataset(f"{path}/{table}", filesystem=fs, format="parquet", partitioning="hive")
    return dataset.to_table().to_pylist()


def assert_archive_is(root: str, table: str, dropped: dict[int, dict[str, Any]]) -> None:
    """The archive's rows of ``table`` are exactly ``dropped`` (by id), every column equal (JSON
    documents compared decoded), each in the folder of its model and its record's UTC day."""
    rows = archived(root, table)
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == len(rows), "no row archived twice"
    assert set(by_id) == set(dropped)
    for row_id, was in dropped.items():
        row = by_id[row_id]
        assert row["model"] == "pets"
        if table == "records":
            assert row["date"] == was["ts"].astimezone(UTC).date().isoformat()
        for column in SCHEMAS[table].names:
            got = json.loads(row[column]) if column in DOCUMENTS else row[column]
            assert got == was[column], (row_id, column)
            if isinstance(got, datetime):
                assert got.utcoffset() == timedelta(0)


def gone(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]) -> dict[int, Any]:
    return {i: row for i, row in before.items() if i not in after}


def late_record(connection: Any, model_id: int, request_id: str, at: datetime) -> None:
    """A record replayed into an old day (its ``ts`` that day, received now)."""
    connection.execute(
        insert(RecordRow),
        [
            {
                "model_id": model_id,
                "version": "v1",
                "variant": "champion",
                "request_id": request_id,
                "ts": at,
                "inputs": {"size": 9.0},
                "outputs": {"prediction": "dog"},
                "latency_ms": 1.0,
                "status": 200,
                "received_at": NOW,
            }
        ],
    )


def test_what_the_prune_drops_reads_back_row_for_row_from_the_hive_layout(
    engine: Engine, tmp_path: Path
) -> None:
    fill(engine)
    records_before = table_rows(engine, RecordRow.__table__)
    labels_before = table_rows(engine, LabelRow.__table__)
    root = (tmp_path / "archive").as_uri()  # file://
    archive = Archive(root)

    report = prune(engine, policy(), NOW, archive=archive)

    records_after = table_rows(engine, RecordRow.__table__)
    labels_after = table_rows(engine, LabelRow.__table__)
    dropped = gone(records_before, records_after)
    assert len(dropped) == 30
    assert len(records_after) == 5
    assert_archive_is(root, "records", dropped)
    dropped_labels = gone(labels_before, labels_after)
    # req-0 ... req-27 every third (10 labels, the pending one of req-3 included); the labels of
    # req-30 and req-33 stay with their records.
    assert len(dropped_labels) == 10
    assert_archive_is(root, "labels", dropped_labels)
    summary = report.as_dict()["archive"]
    assert summary["rows"] == {"records": 30, "labels": 10}
    registry = CollectorRegistry()
    collector = StoreCollector(engine)
    registry.register(collector)
    collector.record(report)
    assert registry.get_sample_value("driftloop_archive_rows_total", {"table": "records"}) == 30
    assert registry.get_sample_value("driftloop_archive_rows_total", {"table": "labels"}) == 10
    assert registry.get_sample_value("driftloop_archive_failures_total", {"table": "records"}) == 0
    assert summary["failures"] == {}
    assert len(summary["files"]) == summary["partitions"] == 6  # 3 days, 2 tables
    assert summary["bytes"] == sum(
        Path(fsspec.core.url_to_fs(f)[1]).stat().st_size for f in summary["files"]
    )


def test_each_partition_has_a_manifest_that_counts_and_hashes_its_rows(
    engine: Engine, tmp_path: Path
) -> None:
    model_id = fill(engine)
    root = str(tmp_path / "archive")
    manifest = archive_day(engine, (model_id, "pets"), DAY1.date(), root)

    folder = tmp_path / "archive" / "records" / "model=pets" / "date=2026-05-01"
    body = json.loads((folder / MANIFEST).read_text())
    assert body["table"] == "records"
    assert body["model"] == "pets"
    assert body["date"] == "2026-05-01"
    assert body["rows"] == manifest.rows == 10
    assert [f["name"] for f in body["schema"]][:3] == ["id", "model_id", "version"]
    (part,) = body["parts"]
    import hashlib

    assert part["sha256"] == hashlib.sha256((folder / part["path"]).read_bytes()).hexdigest()
    assert body["driftloop_version"]
    assert body["created_at"]
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "part-0.parquet"]


def test_a_changed_part_fails_its_manifest_and_the_row_digest_ignores_the_encoding(
    engine: Engine, tmp_path: Path
) -> None:
    model_id = fill(engine)
    root = str(tmp_path / "archive")
    archive_day(engine, (model_id, "pets"), DAY1.date(), root)
    path = tmp_path / "archive" / "records" / "model=pets" / "date=2026-05-01" / "part-0.parquet"
    original = pq.read_table(path)
    manifest = Archive(root).read_manifest("records", "pets", DAY1.date())
    assert manifest is not None

    # Same rows, other encoding: the file hash changes, the row digest does not.
    pq.write_table(original, path, compression="gzip", row_group_size=3)
    with pytest.raises(ArchiveIntegrityError, match="SHA-256 differs"):
        read_partition(root, "records", "pets", DAY1.date())
    from driftloop.store.archive import SCHEMAS, _digest_start

    reread = pq.read_table(path, schema=SCHEMAS["records"])
    assert row_digest(reread, _digest_start(reread.schema)).hexdigest() == (
        manifest.parts[0].rows_sha256
    )

    # One value changed: the row digest changes too.
    status = original.column("status").to_pylist()
    status[0] = 500
    changed = original.set_column(
        original.schema.get_field_index("status"), "status", pa.array(status, pa.int64())
    )
    assert row_digest(changed, _digest_start(changed.schema)).hexdigest() != (
        manifest.parts[0].rows_sha256
    )
    path.unlink()
    with pytest.raises(ArchiveIntegrityError, match="missing"):
        read_partition(root, "records", "pets", DAY1.date())


def test_an_unwritable_destination_keeps_the_rows_and_counts_the_failure_once_logged(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(engine)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the archive's folder should be")
    archive = Archive(str(blocker / "archive"))
    with caplog.at_level(logging.ERROR, logger="driftloop.store.archive"):
        report = prune(engine, policy(), NOW, archive=archive)

    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RecordRow)) == 35
    assert report.rows()["records"] == 0
    assert report.archive is not None
    assert report.archive["failures"] == {"records": 1}
    assert "rows are kept" in caplog.text
    assert "ARCHIVE_URL" in caplog.text
    assert len([r for r in caplog.records if r.name == "driftloop.store.archive"]) == 1

    registry = CollectorRegistry()
    collector = StoreCollector(engine)
    registry.register(collector)
    collector.record(report)
    collector.record(report)
    failures = registry.get_sample_value("driftloop_archive_failures_total", {"table": "records"})
    assert failures == 2
    assert registry.get_sample_value("driftloop_archive_failures_total", {"table": "labels"}) == 0


def test_a_crash_before_the_manifest_keeps_the_rows_and_the_next_run_rewrites_cleanly(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(engine)
    move = MemoryFileSystem.mv

    def crash_before_manifest(self: Any, path1: Any, path2: Any, *args: Any, **kw: Any) -> Any:
        # A stand-in for a process killed between the part and the manifest.
        if str(path2).endswith(MANIFEST):
            raise OSError("killed before the manifest was written")
        return move(self, path1, path2, *args, **kw)

    monkeypatch.setattr(MemoryFileSystem, "mv", crash_before_manifest)
    report = prune(engine, policy(), NOW, archive=Archive("memory://crash19/archive"))
    monkeypatch.setattr(MemoryFileSystem, "mv", move)
    assert report.archive is not None
    assert report.archive["failures"] == {"records": 1}
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RecordRow)) == 35

    store = MemoryFileSystem.store
    left = [p for p in store if p.startswith("/crash19/archive/records/model=pets/date=2026-05-01")]
    assert any(p.endswith("part-0.parquet") for p in left), "the crash left an unlisted part"
    assert not any(p.endswith(MANIFEST) for p in left)

    try:
        retry = Archive("memory://crash19/archive")
        report = prune(engine, policy(), NOW, archive=retry)
        assert report.archive is not None
        assert report.archive["failures"] == {}
        assert report.rows()["records"] == 30
        for day in range(3):
            folder = f"/crash19/archive/records/model=pets/date=2026-05-0{day + 1}"
            names = sorted(p.rsplit("/", 1)[1] for p in store if p.startswith(folder + "/"))
            assert names == [MANIFEST, "part-0.parquet"], names  # no temporary, no orphan
        assert len(archived("memory://crash19/archive", "records")) == 30
    finally:
        for path in [p for p in store if p.startswith("/crash19")]:
            store.pop(path, None)


def test_a_rerun_writes_nothing_new_and_a_late_row_becomes_the_next_part(engine: Engine) -> None:
    model_id = fill(engine)
    root = "memory://rerun19/archive"
    try:
        first = Archive(root)
        assert first.archive_day(engine, (model_id, "pets"), DAY1.date())
        before = first.read_manifest("records", "pets", DAY1.date())
        again = Archive(root)
        assert again.archive_day(engine, (model_id, "pets"), DAY1.date())
        assert again.written == []
        assert again.read_manifest("records", "pets", DAY1.date()) == before

        with engine.begin() as connection:  # a replayed old record lands in the archived day
            connection.execute(
                insert(RecordRow),
                [
                    {
                        "model_id": model_id,
                        "version": "v1",
                        "variant": "champion",
                        "request_id": "late",
                        "ts": DAY1 + timedelta(hours=5),
                        "inputs": {"size": 9.0},
                        "outputs": {"prediction": "dog"},
                        "latency_ms": 1.0,
                        "status": 200,
                        "received_at": NOW,
                    }
                ],
            )
        late = Archive(root)
        assert late.archive_day(engine, (model_id, "pets"), DAY1.date())
        manifest = late.read_manifest("records", "pets", DAY1.date())
        assert manifest is not None
        assert before is not None
        assert [p.path for p in manifest.parts] == ["part-0.parquet", "part-1.parquet"]
        assert manifest.parts[1].rows == 1
        assert manifest.rows == before.rows + 1
        rows = read_partition(root, "records", "pets", DAY1.date())
        assert rows is not None
        assert rows.num_rows == 11
        assert rows.column("request_id").to_pylist().count("late") == 1
    finally:
        store = MemoryFileSystem.store
        for path in [p for p in store if p.startswith("/rerun19")]:
            store.pop(path, None)


def test_a_missing_fsspec_plugin_is_a_counted_failure_that_names_the_fix(engine: Engine) -> None:
    model_id = fill(engine)
    archive = Archive("nosuchproto19://bucket/archive")
    assert not archive.archive_day(engine, (model_id, "pets"), DAY1.date())
    assert archive.failures == {"records": 1}
    assert "nosuchproto19" in archive.errors[0]


def test_days_are_archived_whole_so_the_cutoff_moves_back_to_midnight(engine: Engine) -> None:
    fill(engine)
    now = DAY1 + KEEP + timedelta(days=1, hours=12)  # cutoff: 12:00 on the second day
    with_archive = prune(engine, policy(), now, dry_run=True, archive=Archive("memory://x19"))
    without = prune(engine, policy(), now, dry_run=True)
    assert with_archive.steps[0].cutoff == datetime(2026, 5, 2, tzinfo=UTC)
    assert with_archive.rows()["records"] == 10  # the first day only
    assert without.rows()["records"] == 15  # 5 records of the second day are before 12:00
    assert with_archive.archive is not None
    assert with_archive.archive["partitions"] == 0


def test_the_day_folders_follow_the_records_utc_day(engine: Engine) -> None:
    model_id = fill(engine)
    archive = Archive("memory://days19")
    assert list(archive.days(engine, model_id, NOW)) == [
        date(2026, 5, 1),
        date(2026, 5, 2),
        date(2026, 5, 3),
    ]


@pytest.fixture
def partitioned(pg_database_url: str) -> Iterator[Engine]:
    """PostgreSQL with a day partition for each of the old days (migration 0011)."""
    from driftloop.store.partitions import ensure_partitions

    engine = make_engine(pg_database_url)
    with engine.begin() as connection:
        ensure_partitions(connection, "records", start=DAY1.date(), days_ahead=2)
    yield engine
    engine.dispose()


def test_day_partitions_are_archived_before_they_are_dropped(
    partitioned: Engine, tmp_path: Path
) -> None:
    fill(partitioned)
    records_before = table_rows(partitioned, RecordRow.__table__)
    labels_before = table_rows(partitioned, LabelRow.__table__)
    root = str(tmp_path / "archive")

    report = prune(partitioned, policy(), NOW, archive=Archive(root))

    assert [p.name for p in report.partitions if p.table == "records"] == [
        "records_p20260501",
        "records_p20260502",
        "records_p20260503",
    ]
    records_after = table_rows(partitioned, RecordRow.__table__)
    dropped = gone(records_before, records_after)
    assert len(dropped) == 30
    assert_archive_is(root, "records", dropped)
    assert_archive_is(
        root, "labels", gone(labels_before, table_rows(partitioned, LabelRow.__table__))
    )
    assert report.archive is not None
    assert report.archive["rows"] == {"records": 30, "labels": 10}


def test_a_partition_whose_archive_failed_is_not_dropped(
    partitioned: Engine, tmp_path: Path
) -> None:
    fill(partitioned)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    report = prune(partitioned, policy(), NOW, archive=Archive(str(blocker / "archive")))

    assert [p for p in report.partitions if p.table == "records"] == []
    with partitioned.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RecordRow)) == 35
    assert report.archive is not None
    assert report.archive["failures"] == {"records": 1}  # once: the DELETE path does not retry


def test_db_prune_exits_1_and_says_so_when_a_day_could_not_be_archived(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app

    fill(engine)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("DRIFTLOOP_RETENTION__ARCHIVE_URL", str(blocker / "archive"))
    args = ["db", "prune", "--database-url", database_url, "--retention-days", "10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "archive failed (rows kept)" in result.stderr
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RecordRow)) == 35  # all kept


def test_a_record_replayed_into_a_partition_during_its_archive_is_archived_before_the_drop(
    partitioned: Engine, tmp_path: Path
) -> None:
    model_id = fill(partitioned)
    records_before = table_rows(partitioned, RecordRow.__table__)
    root = str(tmp_path / "archive")
    archive = Archive(root)

    def archive_then_a_replay_lands(connection: Any, table: str, name: str, *bounds: Any) -> None:
        archive.before_drop(connection, table, name, *bounds)
        if name == "records_p20260502":  # written after the archive read the day
            with partitioned.begin() as other:
                late_record(other, model_id, "late", DAY1 + timedelta(days=1, hours=5))

    report = prune(
        partitioned, policy(), NOW, archive=archive, before_drop=archive_then_a_replay_lands
    )

    records_after = table_rows(partitioned, RecordRow.__table__)
    assert len(records_after) == 5  # the replay went with its partition ...
    rows = {r["id"]: r for r in archived(root, "records")}
    (late,) = [i for i, r in rows.items() if r["request_id"] == "late"]  # ... archived first
    assert set(rows) == set(gone(records_before, records_after)) | {late}
    manifest = archive.read_manifest("records", "pets", date(2026, 5, 2))
    assert manifest is not None
    assert [p.rows for p in manifest.parts] == [10, 1]  # the replay is the next part
    assert report.archive is not None
    assert report.archive["rows"]["records"] == 31
    assert [p.name for p in report.partitions if p.table == "records"] == [
        "records_p20260501",
        "records_p20260502",
        "records_p20260503",
    ]


def test_a_record_replayed_into_an_archived_day_waits_for_the_next_run(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = fill(engine)
    records_before = table_rows(engine, RecordRow.__table__)
    labels_before = table_rows(engine, LabelRow.__table__)
    root = str(tmp_path / "archive")
    archive_days = Archive.before_delete

    def archive_then_a_replay_lands(self: Archive, bind: Any, model: int, cutoff: datetime) -> Any:
        cut = archive_days(self, bind, model, cutoff)
        with engine.begin() as connection:  # committed after the archive read the first day
            late_record(connection, model_id, "late", DAY1 + timedelta(hours=1))
        return cut

    monkeypatch.setattr(Archive, "before_delete", archive_then_a_replay_lands)
    first = prune(engine, policy(), NOW, archive=Archive(root))
    monkeypatch.setattr(Archive, "before_delete", archive_days)
    assert first.rows()["records"] == 30
    left = table_rows(engine, RecordRow.__table__)
    assert sorted(r["request_id"] for r in left.values() if r["ts"] < NOW) == ["late"]
    assert_archive_is(root, "records", gone(records_before, left))  # the late one not yet

    late = {i: r for i, r in left.items() if r["request_id"] == "late"}
    second = prune(engine, policy(), NOW, archive=Archive(root))
    assert second.rows()["records"] == 1
    assert_archive_is(root, "records", {**gone(records_before, left), **late})
    assert_archive_is(root, "labels", gone(labels_before, table_rows(engine, LabelRow.__table__)))
    manifest = Archive(root).read_manifest("records", "pets", DAY1.date())
    assert manifest is not None
    assert [p.rows for p in manifest.parts] == [10, 1]


def test_a_prune_after_an_interrupted_one_keeps_the_manifests_and_adds_no_part(
    engine: Engine, tmp_path: Path
) -> None:
    model_id = fill(engine)
    root = tmp_path / "archive"
    # The first run archived every old day, then stopped before deleting anything.
    cut = Archive(str(root)).before_delete(engine, model_id, NOW - KEEP)
    assert cut == datetime(2026, 5, 21, tzinfo=UTC)
    files = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert len(files) == 12  # 3 days, 2 tables, a part and a manifest each

    again = Archive(str(root))
    report = prune(engine, policy(), NOW, archive=again)

    assert report.rows()["records"] == 30
    assert again.written == []
    assert {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} == files


def test_the_dry_run_says_what_would_be_archived_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    model_id = fill(engine)
    root = tmp_path / "archive"
    Archive(str(root)).archive_day(engine, (model_id, "pets"), DAY1.date())

    report = prune(engine, policy(), NOW, dry_run=True, archive=Archive(str(root)))

    assert report.archive is not None
    assert report.archive["planned"] == [
        {"model": "pets", "date": "2026-05-01", "records": 10, "archived_rows": 10, "error": None},
        {
            "model": "pets",
            "date": "2026-05-02",
            "records": 10,
            "archived_rows": None,
            "error": None,
        },
        {
            "model": "pets",
            "date": "2026-05-03",
            "records": 10,
            "archived_rows": None,
            "error": None,
        },
    ]
    assert report.archive["partitions"] == 0
    assert not (root / "records" / "model=pets" / "date=2026-05-02").exists()
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RecordRow)) == 35


def test_db_prune_dry_run_lists_the_days_it_would_archive(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app

    fill(engine)
    monkeypatch.setenv("DRIFTLOOP_RETENTION__ARCHIVE_URL", str(tmp_path / "archive"))
    args = ["db", "prune", "--database-url", database_url, "--retention-days", "10", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "would archive first" in result.stdout
    # 2026-05-01 to 05-03, 10 records each, and 05-31 (5): --retention-days runs on today's clock
    assert "would archive 4 days (35 records) first; 0 archived already" in result.stdout
    for day in ("2026-05-01", "2026-05-02", "2026-05-03"):
        assert day in result.stdout
    assert not (tmp_path / "archive").exists()
