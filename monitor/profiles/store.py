"""Reading and writing profile buckets: the three grains at ingest, a window as a sum of buckets.

At ingest each group of records is added to its minute, hour and day bucket. Rows are locked in
key order (``SELECT ... FOR UPDATE`` on PostgreSQL, after an ``INSERT ... ON CONFLICT DO
NOTHING`` that creates missing rows) so concurrent monitor replicas neither lose updates nor
deadlock. A window reads whole days, then whole hours, then minutes at its edges: at most
``days + 46 + 118`` rows whatever its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from driftloop.store.dialect import dialect_of
from driftloop.store.drift import DriftProfile

__all__ = ["GRAINS", "add_buckets", "bucket_start", "read_window", "segments"]

GRAINS: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}

KEYS_PER_QUERY = 200
"""Profile keys read back per query (SQLite bounds an expression's depth at 1,000)."""


def bucket_start(ts: datetime, grain: str) -> datetime:
    """Start of the ``grain`` bucket holding ``ts`` (UTC)."""
    if grain == "minute":
        return ts.replace(second=0, microsecond=0)
    if grain == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def add_buckets(
    session: Session,
    model_id: int,
    layout: str,
    groups: dict[tuple[str, str, datetime], NDArray[np.float64]],
    now: datetime,
) -> None:
    """Add each ``(version, variant, minute) -> vector`` to its minute, hour and day buckets."""
    totals: dict[tuple[str, str, str, datetime], NDArray[np.float64]] = {}
    for (version, variant, minute), vector in groups.items():
        for grain in GRAINS:
            key = (version, variant, grain, bucket_start(minute, grain))
            if key in totals:
                totals[key] = totals[key] + vector
            else:
                totals[key] = vector.copy()
    keys = sorted(totals)  # one lock order for every writer: no deadlocks
    empty = np.zeros_like(next(iter(totals.values()))).tobytes() if totals else b""
    session.execute(
        dialect_of(session)
        .insert(DriftProfile)
        .on_conflict_do_nothing(
            index_elements=["model_id", "layout", "version", "variant", "grain", "start"]
        ),
        [
            {
                "model_id": model_id,
                "layout": layout,
                "version": v,
                "variant": r,
                "grain": g,
                "start": s,
                "records": 0,
                "data": empty,
                "updated_at": now,
            }
            for v, r, g, s in keys
        ],
    )
    # Read back in chunks: one OR over every key passes SQLite's expression depth (1,000) for a
    # batch spanning many versions or minutes, a failure that would repeat on every resend.
    for first in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[first : first + KEYS_PER_QUERY]
        condition = or_(
            *(
                and_(
                    DriftProfile.version == v,
                    DriftProfile.variant == r,
                    DriftProfile.grain == g,
                    DriftProfile.start == s,
                )
                for v, r, g, s in chunk
            )
        )
        query = (
            select(DriftProfile)
            .where(DriftProfile.model_id == model_id, DriftProfile.layout == layout, condition)
            .order_by(
                DriftProfile.version, DriftProfile.variant, DriftProfile.grain, DriftProfile.start
            )
            .with_for_update()
        )
        for row in session.scalars(query):
            add = totals[(row.version, row.variant, row.grain, row.start)]
            current = np.frombuffer(row.data, dtype=np.float64) if row.data else 0.0
            total = current + add
            row.data = total.tobytes()
            row.records = int(total[0])
            row.updated_at = now


def segments(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Cover ``[start, end)`` (minute-aligned) with the fewest day, hour and minute buckets."""
    out: list[tuple[str, datetime, datetime]] = []

    def ceil(ts: datetime, grain: str) -> datetime:
        floor = bucket_start(ts, grain)
        return floor if floor == ts else floor + GRAINS[grain]

    day_lo, day_hi = ceil(start, "day"), bucket_start(end, "day")
    if day_lo < day_hi:
        out.append(("day", day_lo, day_hi))
        left, right = (start, day_lo), (day_hi, end)
    else:
        left, right = (start, end), (end, end)
    for lo, hi in (left, right):
        if lo >= hi:
            continue
        hour_lo, hour_hi = ceil(lo, "hour"), bucket_start(hi, "hour")
        if hour_lo < hour_hi:
            out.append(("hour", hour_lo, hour_hi))
            out.extend(("minute", a, b) for a, b in ((lo, hour_lo), (hour_hi, hi)) if a < b)
        else:
            out.append(("minute", lo, hi))
    return out


def read_window(
    session: Session,
    model_id: int,
    layout: str,
    size: int,
    start: datetime,
    end: datetime,
    keys: Iterable[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    """Summed vectors of ``[start, end)`` per ``(version, variant)``."""
    wanted = set(keys) if keys is not None else None
    out: dict[tuple[str, str], NDArray[np.float64]] = {}
    # One range query per segment (at most five): each is an index range scan, where one query
    # OR-ing the ranges made both SQLite and PostgreSQL scan every bucket of the model.
    for grain, lo, hi in segments(start, end):
        query = select(DriftProfile.version, DriftProfile.variant, DriftProfile.data).where(
            DriftProfile.model_id == model_id,
            DriftProfile.layout == layout,
            DriftProfile.grain == grain,
            DriftProfile.start >= lo,
            DriftProfile.start < hi,
        )
        for version, variant, data in session.execute(query):
            key = (version, variant)
            if wanted is not None and key not in wanted:
                continue
            vector = np.frombuffer(data, dtype=np.float64)
            if vector.size != size:
                continue  # written under another layout revision
            out[key] = out[key] + vector if key in out else vector.copy()
    return out
