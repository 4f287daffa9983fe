"""The pending halves of KServe payload-logger events (``POST /v1/cloudevents``).

KServe's logger sends a prediction's request and response as two CloudEvents with the same
``ce-id``, in any order, possibly to different monitor replicas. The first half waits here (so a
restart or another replica still pairs it); the second one turns the pair into records and both
are deleted. Halves that never find their pair (KServe sends no response for a non-200 answer)
are pruned after a while, counted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId


class CloudEventHalf(Base):
    """One half (request or response) of a logged inference, waiting for the other."""

    __tablename__ = "cloudevent_halves"
    __table_args__ = (
        UniqueConstraint("model", "event_id", "kind"),
        Index("ix_cloudevent_halves_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    event_time: Mapped[datetime | None]
    received_at: Mapped[datetime]
