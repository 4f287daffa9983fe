"""Archive before drop, on SQLite and PostgreSQL: what the prune drops is in the archive, row for
row (JSON documents, timestamps with their zone); the Hive layout reads as one table; a changed
file fails its manifest; a failed archive keeps the rows and is counted; re-runs are idempotent
and a crash between the part and the manifest is cleaned up by the next run.

Day partitions archived before they are dropped, replays during an archive, dry runs and
``db prune`` are in ``test_archive_prune.py``; shared helpers in ``archive_support.py``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, func, insert, select

from driftloop.monitor.retention import StoreCollector
from driftloop.store import LabelRow, RecordRow
from driftloop.store.archive import Archive, archive_day, read_partition
from driftloop.store.archive_format import MANIFEST, ArchiveIntegrityError, row_digest
from driftloop.store.retention import prune
from tests.driftloop.archive_support import (
    DAY1,
    KEEP,
    NOW,
    archived,
    assert_archive_is,
    fill,
    gone,
    policy,
    table_rows,
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
    from driftloop.store.archive_format import SCHEMAS, _digest_start

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
