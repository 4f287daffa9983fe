"""The routing policy sidecars poll (contract: ``GET /v1/models/{name}/routing``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import RoutingMode
from driftloop.store import Model, ModelVersion, RoutingPolicyRow

__all__ = ["policy_json", "read_policy", "write_policy"]


def _url(session: Session, model: Model, version: str | None) -> str | None:
    if version is None:
        return None
    return session.scalar(
        select(ModelVersion.url).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version
        )
    )


def read_policy(session: Session, model: Model) -> RoutingPolicyRow | None:
    """The model's policy row, if it has one."""
    return session.scalar(select(RoutingPolicyRow).where(RoutingPolicyRow.model_id == model.id))


def write_policy(
    session: Session,
    model: Model,
    *,
    mode: str | RoutingMode,
    weight: float,
    champion: str,
    challenger: str | None,
    sticky_key: str | None,
    now: datetime,
) -> RoutingPolicyRow:
    """Set the model's policy; the revision grows only when something changed."""
    mode = RoutingMode(mode)  # the contract the sidecars follow; raises on an unknown mode
    if mode is not RoutingMode.single and challenger is None:
        raise ValueError(f"routing mode {mode.value!r} needs a challenger")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"routing weight must be within 0..1, got {weight!r}")
    values: dict[str, Any] = {
        "mode": mode.value,
        "weight": float(weight),
        "sticky_key": sticky_key if mode == "ab" else None,
        "champion_version": champion,
        "champion_url": _url(session, model, champion),
        "challenger_version": challenger if mode != "single" else None,
        "challenger_url": _url(session, model, challenger) if mode != "single" else None,
    }
    row = read_policy(session, model)
    if row is None:
        row = RoutingPolicyRow(model_id=model.id, revision=1, updated_at=now, **values)
        session.add(row)
    elif any(getattr(row, key) != value for key, value in values.items()):
        for key, value in values.items():
            setattr(row, key, value)
        row.revision += 1
        row.updated_at = now
    session.flush()
    return row


def policy_json(model: Model, row: RoutingPolicyRow) -> dict[str, Any]:
    """The policy in the shape the sidecar contract fixes."""
    challenger = (
        None
        if row.challenger_version is None
        else {"version": row.challenger_version, "url": row.challenger_url}
    )
    return {
        "model": model.name,
        "mode": row.mode,
        "weight": row.weight,
        "sticky_key": row.sticky_key,
        "champion": {"version": row.champion_version, "url": row.champion_url},
        "challenger": challenger,
        "revision": row.revision,
        "updated_at": row.updated_at.isoformat().replace("+00:00", "Z"),
    }
