"""feedback: labels, dataset snapshots, latest performance results

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.store.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts() -> driftloop.store.base.UTCDateTime:
    return driftloop.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("label", _json(), nullable=False),
        sa.Column("label_ts", _ts(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("model_id", "request_id", name=op.f("uq_labels_model_id_request_id")),
    )
    op.create_index("ix_labels_request_id", "labels", ["request_id"], unique=False)

    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.String(length=100), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_snapshots_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("snapshot_id", name=op.f("uq_snapshots_snapshot_id")),
    )
    op.create_index(op.f("ix_snapshots_model_id"), "snapshots", ["model_id"], unique=False)

    op.create_table(
        "performance_results",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.Column("computed_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_performance_results_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_performance_results")),
    )


def downgrade() -> None:
    op.drop_table("performance_results")
    op.drop_index(op.f("ix_snapshots_model_id"), table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index("ix_labels_request_id", table_name="labels")
    op.drop_table("labels")
