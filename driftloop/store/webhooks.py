"""Tables of the retraining loop: policies, the trigger log, the webhook outbox and its attempts.

The outbox row is written in the same transaction as the trigger it announces, so a trigger the
database acknowledged is always delivered (at least once), even across a crash of the monitor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId


class RetrainPolicyRow(Base):
    """A model's retraining policy (JSON, validated by ``driftloop.feedback.triggers``)."""

    __tablename__ = "retrain_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), unique=True)
    policy: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class RetrainConditionState(Base):
    """Debounce state of one automatic condition of one model (an open incident or a schedule)."""

    __tablename__ = "retrain_condition_state"
    __table_args__ = (UniqueConstraint("model_id", "condition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    condition: Mapped[str] = mapped_column(String(32))
    active_since: Mapped[datetime | None]
    fired_trigger_id: Mapped[int | None]
    next_due_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class RetrainTrigger(Base):
    """One firing: why (reason and evidence), what data (snapshot manifest), and when."""

    __tablename__ = "retrain_triggers"
    __table_args__ = (Index("ix_retrain_triggers_model_fired", "model_id", "fired_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]]
    snapshot_id: Mapped[str | None] = mapped_column(String(200))
    manifest: Mapped[dict[str, Any] | None]
    fired_at: Mapped[datetime]


class WebhookEndpoint(Base):
    """A receiver URL and its health; disabled after failing for too long, re-enabled by API."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    failing_since: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutboxMessage(Base):
    """A webhook message; its ``webhook_id`` and body never change across retries and replays."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    trigger_id: Mapped[int | None] = mapped_column(
        ForeignKey("retrain_triggers.id", ondelete="SET NULL")
    )
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One POST of an outbox message: when, the HTTP status or the error, and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_outbox.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    started_at: Mapped[datetime]
    duration_seconds: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | retrying | failed | held
