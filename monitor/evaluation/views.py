"""The ``drift`` and ``quality`` sections of ``GET /v1/models/{name}``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.store import DriftResult, Model

__all__ = ["drift_section", "quality_section"]


def _latest(session: Session, model: Model) -> list[DriftResult]:
    newest = (
        select(func.max(DriftResult.id))
        .where(DriftResult.model_id == model.id)
        .group_by(DriftResult.version, DriftResult.variant)
        .scalar_subquery()
    )
    query = (
        select(DriftResult)
        .where(DriftResult.id.in_(newest))
        .order_by(DriftResult.version, DriftResult.variant)
    )
    return list(session.scalars(query))


def drift_section(session: Session, model: Model) -> list[dict[str, Any]]:
    """Newest drift result per version and variant (against the reference and the last window)."""
    out = []
    for row in _latest(session, model):
        result = row.result
        out.append(
            {
                key: result.get(key)
                for key in (
                    "version",
                    "variant",
                    "computed_at",
                    "window",
                    "records",
                    "config",
                    "reference",
                    "previous",
                    "prediction",
                )
            }
        )
    return out


def quality_section(session: Session, model: Model) -> list[dict[str, Any]]:
    """Newest data-quality shares per version and variant."""
    return [
        {
            "version": row.version,
            "variant": row.variant,
            "computed_at": row.result.get("computed_at"),
            "window": row.result.get("window"),
            **row.result["quality"],
        }
        for row in _latest(session, model)
    ]
