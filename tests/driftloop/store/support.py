"""Helpers of the dialect contract tests (``test_dialect_contract*.py``): records and labels to
write, and what the database holds afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from driftloop.contract import Record
from driftloop.store import LabelRow, RecordRow, make_sessionmaker

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LABELS = cast(Table, LabelRow.__table__)
RECORDS = cast(Table, RecordRow.__table__)


def records(n: int, *, prefix: str = "r", start: int = 0) -> list[Record]:
    return [
        Record.model_validate(
            {
                "request_id": f"{prefix}{i}",
                "model": "pets",
                "version": "v1",
                "variant": "shadow" if i % 3 == 0 else "champion",
                "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                "inputs": {"size": i / 2, "color": "red", "tags": ["a", i], "note": None},
                "outputs": {"prediction": i % 2, "probabilities": {"0": 0.25, "1": 0.75}},
                "latency_ms": 1.5 + i,
                "status": 200,
            }
        )
        for i in range(start, start + n)
    ]


def stored(engine: Engine) -> dict[tuple[str, str], RecordRow]:
    with make_sessionmaker(engine)() as session:
        return {(r.request_id, r.variant): r for r in session.scalars(select(RecordRow))}


def label_rows(n: int, *, label: Any = "cat", at: datetime = T0) -> list[dict[str, Any]]:
    return [
        {
            "model_id": 1,
            "request_id": f"q{i}",
            "label": label,
            "label_ts": at,
            "received_at": at,
            "updated_at": at,
            "corrections": 0,
        }
        for i in range(n)
    ]


def labels_of(engine: Engine) -> dict[str, LabelRow]:
    with make_sessionmaker(engine)() as session:
        return {row.request_id: row for row in session.scalars(select(LabelRow))}
