"""The newest drift verdict of a model's serving champion, for retraining triggers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.store import DriftResult, Model

__all__ = ["latest_drift"]


def latest_drift(session: Session, model: Model) -> dict[str, Any] | None:
    """The newest champion drift result against the reference, or None when there is none:
    ``{"dataset_drift", "drifted_share", "features", "version", "records", "evaluated_at"}``."""
    row = session.scalar(
        select(DriftResult)
        .where(DriftResult.model_id == model.id, DriftResult.variant == "champion")
        .order_by(DriftResult.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    reference = row.result.get("reference") or {}
    return {
        "dataset_drift": bool(reference.get("dataset_drift")),
        "drifted_share": reference.get("drifted_share"),
        "features": reference.get("features") or [],
        "version": row.version,
        "records": row.records,
        "evaluated_at": row.computed_at.isoformat(),
    }
