"""Rollout tables: the routing policy sidecars poll, rollouts and their decision history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base


class RoutingPolicyRow(Base):
    """The routing policy of one model (contract: ``GET /v1/models/{name}/routing``).

    ``revision`` grows by one on every change, so a sidecar can tell a new policy from a re-read.
    """

    __tablename__ = "routing_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), unique=True)
    mode: Mapped[str] = mapped_column(String(16))  # single | canary | ab | shadow
    weight: Mapped[float] = mapped_column(Float)
    sticky_key: Mapped[str | None] = mapped_column(String(200))
    champion_version: Mapped[str] = mapped_column(String(200))
    champion_url: Mapped[str | None] = mapped_column(Text)
    challenger_version: Mapped[str | None] = mapped_column(String(200))
    challenger_url: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int]
    updated_at: Mapped[datetime]


class Rollout(Base):
    """One champion-vs-challenger rollout and where its state machine stands.

    ``status`` is active, paused, promoted, rolled_back or superseded; ``step`` indexes the plan
    made from ``config`` (the rollout settings it started with); ``progress`` keeps what must
    survive between evaluations (running interval bounds, the SRM e-value of finished steps).
    """

    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_model_status", "model_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    champion_version: Mapped[str] = mapped_column(String(200))
    challenger_version: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[int]
    step_started_at: Mapped[datetime]
    phase_started_at: Mapped[datetime]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    config: Mapped[dict[str, Any]]
    progress: Mapped[dict[str, Any]]
    evidence: Mapped[dict[str, Any] | None]
    evaluated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class RolloutDecision(Base):
    """A change of a rollout's state, with the evidence it was made on."""

    __tablename__ = "rollout_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(
        ForeignKey("rollouts.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # start advance promote rollback pause ...
    actor: Mapped[str] = mapped_column(String(16))  # auto | admin
    reason: Mapped[str] = mapped_column(Text)
    from_step: Mapped[int]
    to_step: Mapped[int]
    evidence: Mapped[dict[str, Any] | None]
    decided_at: Mapped[datetime]
