"""Core tables: models, their versions, raw records and reference datasets.

Components own further tables in their own modules of this package (``drift``, ``feedback``,
``rollout``, ``webhooks``), all on the same :class:`~driftloop.store.base.Base`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftloop.store.base import Base, BigId, LogDocument


class Model(Base):
    """A served model; its schema says how to read its records."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    schema: Mapped[dict[str, Any]]
    schema_source: Mapped[str] = mapped_column(String(16))  # inferred | registered | reference
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ModelVersion(Base):
    """One version of a model and the role it plays (champion, challenger, retired)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class RecordRow(Base):
    """One logged prediction row; unique per model on ``(request_id, variant)``.

    The hot table keeps only the indexes its queries need (each costs every insert): the unique
    key leads with ``request_id`` so that it also finds a label's records when the label names
    no model. No foreign key to ``models``: its per-row check cost a fifth of the insert
    (migration 0007).
    """

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("request_id", "model_id", "variant"),
        Index("ix_records_model_ts", "model_id", "ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[int]
    version: Mapped[str] = mapped_column(String(200))
    variant: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(200))
    ts: Mapped[datetime]
    inputs: Mapped[dict[str, Any]] = mapped_column(LogDocument)
    outputs: Mapped[dict[str, Any]] = mapped_column(LogDocument)
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[int]
    received_at: Mapped[datetime]


class ReferenceDataset(Base):
    """A reference dataset as uploaded (Parquet bytes). A version's own newest one is its
    reference; versions without one use the champion's, else the model's newest unversioned one."""

    __tablename__ = "reference_datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    rows: Mapped[int]
    columns: Mapped[dict[str, Any]]  # {"names": [...], "kinds": {...}}
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    # The version trained on it; None: the model's own (used by versions without one).
    version: Mapped[str | None] = mapped_column(String(200), default=None)
