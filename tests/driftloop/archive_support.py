"""Helpers of the archive tests (``test_archive*.py``): a model with records over three old days
and labels, and the archive's rows read back as one Hive-partitioned dataset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fsspec
import pyarrow.dataset as ds
from sqlalchemy import Engine, insert, select

from driftloop.store import LabelRow, Model, RecordRow
from driftloop.store.archive_format import DOCUMENTS, SCHEMAS
from driftloop.store.retention import RetentionPolicy

NOW = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)
DAY1 = datetime(2026, 5, 1, tzinfo=UTC)  # the first of three old days
KEEP = timedelta(days=10)


def policy() -> RetentionPolicy:
    return RetentionPolicy(
        records=KEEP, pending_labels=KEEP, profiles=KEEP, ood_records=KEEP, batch_rows=7
    )


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
