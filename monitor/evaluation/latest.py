"""The newest drift verdict of a model's serving champion, for retraining triggers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.store import DriftResult, Model

__all__ = ["latest_drift"]


def latest_drift(
    session: Session, model: Model, now: datetime | None = None
) -> dict[str, Any] | None:
    """The newest champion drift result against the reference, or None when there is none:
    ``{"dataset_drift", "drifted_share", "features", "version", "records", "evaluated_at",
    "age_seconds", "window_minutes"}``.

    With ``now``, a result older than its own window (no record for a whole window, so the job
    wrote nothing newer) is no longer the model's state: None, so a drift incident resting on
    it closes when traffic stops. ``age_seconds`` is None without ``now``.
    """
    row = session.scalar(
        select(DriftResult)
        .where(DriftResult.model_id == model.id, DriftResult.variant == "champion")
        .order_by(DriftResult.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    age = None if now is None else (now - row.computed_at).total_seconds()
    minutes = (row.result.get("window") or {}).get("minutes") or 0
    if age is not None and age > 60.0 * max(float(minutes), 1.0):
        return None
    reference = row.result.get("reference") or {}
    return {
        "dataset_drift": bool(reference.get("dataset_drift")),
        "drifted_share": reference.get("drifted_share"),
        "features": reference.get("features") or [],
        "version": row.version,
        "records": row.records,
        "evaluated_at": row.computed_at.isoformat(),
        "age_seconds": age,
        "window_minutes": minutes or None,
    }
