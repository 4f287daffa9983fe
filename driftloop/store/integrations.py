"""Tables of the registry integrations: the MLflow webhook deliveries received.

A delivery id is written in the same transaction as the registration it caused, so a delivery the
monitor acknowledged is never acted on twice (MLflow's retries and replays find the row), and a
delivery that failed left no row behind (its retry is processed as new).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId


class MlflowDelivery(Base):
    """One MLflow webhook delivery the monitor processed: its id, event and outcome."""

    __tablename__ = "mlflow_deliveries"
    __table_args__ = (Index("ix_mlflow_deliveries_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(128), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    registered_model: Mapped[str | None] = mapped_column(String(256))
    version: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
