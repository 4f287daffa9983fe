"""Feedback tables: labels (ground truth by request id), dataset snapshots, performance results.

Labels are keyed by ``(model_id, request_id)``. ``model_id`` is ``0`` (:data:`PENDING_MODEL`) for a
label that named no model and whose request id no record has shown yet; the join at query time
matches such a label to whichever model logs that request id, so the record ingest path needs no
hook (see ``driftloop.feedback.join``). There is deliberately no foreign key on ``labels.model_id``
for that reason (0 names no model), so labels outlive a deleted model until removed by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId, JSONType

PENDING_MODEL = 0
"""``labels.model_id`` of a label not yet attributed to a model."""


class LabelRow(Base):
    """The latest ground truth for one request id of one model; corrections overwrite it."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("model_id", "request_id"),
        Index("ix_labels_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int]
    request_id: Mapped[str] = mapped_column(String(200))
    label: Mapped[Any] = mapped_column(JSONType)  # JSON keeps bool, int, float and str apart
    label_ts: Mapped[datetime]
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    corrections: Mapped[int] = mapped_column(default=0)


class SnapshotRow(Base):
    """A dataset snapshot written for retraining: where it is and its manifest."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(String(100), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    uri: Mapped[str] = mapped_column(String(2000))
    rows: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class PerformanceResultRow(Base):
    """The latest performance computed by the leader for one model (what scrapes read)."""

    __tablename__ = "performance_results"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    result: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]
