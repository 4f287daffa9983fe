"""Tables of the drift component: per-bucket profiles, evaluation results, flagged records.

Profiles are float64 vectors stored as bytes (``numpy.frombuffer`` reads them back without
parsing), one row per model, layout, version, variant, grain (minute, hour, day) and bucket start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId


class DriftProfile(Base):
    """Summed profile vector of one time bucket of one model version and variant."""

    __tablename__ = "drift_profiles"
    __table_args__ = (
        UniqueConstraint("model_id", "layout", "version", "variant", "grain", "start"),
        Index("ix_drift_profiles_window", "model_id", "layout", "grain", "start"),
    )
    # The ORM updates a profile by (id, start): on PostgreSQL's day partitions (migration 0011)
    # the bucket start finds the one partition to look in, where the id alone searches them all.
    __mapper_args__ = {"primary_key": ["id", "start"]}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    layout: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    grain: Mapped[str] = mapped_column(String(8))  # minute | hour | day
    start: Mapped[datetime]
    records: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class DriftResult(Base):
    """One evaluation of one model version and variant: drift, prediction drift and quality."""

    __tablename__ = "drift_results"
    __table_args__ = (Index("ix_drift_results_model_time", "model_id", "computed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[datetime]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    records: Mapped[int]
    dataset_drift: Mapped[bool]
    drifted_share: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any]]


class OodRecord(Base):
    """A record the input guard flagged as out of distribution, and the features why."""

    __tablename__ = "drift_ood_records"
    __table_args__ = (Index("ix_drift_ood_records_model_ts", "model_id", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(200))
    ts: Mapped[datetime]
    features: Mapped[dict[str, Any]]  # {"names": [...]}
