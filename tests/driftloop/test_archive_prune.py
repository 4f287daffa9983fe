"""Archive before drop during a prune: PostgreSQL day partitions are archived before they are
dropped and kept when their archive fails; a record replayed into a day during or after its
archive is archived before its rows go; an interrupted prune adds no part; dry runs and
``db prune`` say what would be archived and write nothing (format and round trip are in
``test_archive.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from driftloop.store import LabelRow, RecordRow, make_engine
from driftloop.store.archive import Archive
from driftloop.store.retention import prune
from tests.driftloop.archive_support import (
    DAY1,
    KEEP,
    NOW,
    archived,
    assert_archive_is,
    fill,
    gone,
    late_record,
    policy,
    table_rows,
)


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
