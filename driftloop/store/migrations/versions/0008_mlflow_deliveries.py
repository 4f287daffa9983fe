"""mlflow_deliveries: the MLflow webhook deliveries received (replay refusal, deduplication)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import driftloop.store.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlflow_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("registered_model", sa.String(length=256), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("received_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_mlflow_deliveries_delivery_id")),
    )
    op.create_index(
        "ix_mlflow_deliveries_received_at", "mlflow_deliveries", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_mlflow_deliveries_received_at", table_name="mlflow_deliveries")
    op.drop_table("mlflow_deliveries")
