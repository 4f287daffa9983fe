"""drift: per-bucket profiles, evaluation results, out-of-distribution records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.store.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> driftloop.store.base.UTCDateTime:
    return driftloop.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_profiles",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("layout", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("start", _utc(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_drift_profiles_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_profiles")),
        sa.UniqueConstraint(
            "model_id",
            "layout",
            "version",
            "variant",
            "grain",
            "start",
            name=op.f("uq_drift_profiles_model_id_layout_version_variant_grain_start"),
        ),
    )
    with op.batch_alter_table("drift_profiles", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_profiles_window", ["model_id", "layout", "grain", "start"], unique=False
        )

    op.create_table(
        "drift_results",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("computed_at", _utc(), nullable=False),
        sa.Column("window_start", _utc(), nullable=False),
        sa.Column("window_end", _utc(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("dataset_drift", sa.Boolean(), nullable=False),
        sa.Column("drifted_share", sa.Float(), nullable=False),
        sa.Column("result", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_drift_results_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_results")),
    )
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drift_results_model_time", ["model_id", "computed_at"], unique=False
        )

    op.create_table(
        "drift_ood_records",
        sa.Column("id", _BIGID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("ts", _utc(), nullable=False),
        sa.Column("features", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_drift_ood_records_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_ood_records")),
    )
    with op.batch_alter_table("drift_ood_records", schema=None) as batch_op:
        batch_op.create_index("ix_drift_ood_records_model_ts", ["model_id", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drift_ood_records", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_ood_records_model_ts")
    op.drop_table("drift_ood_records")
    with op.batch_alter_table("drift_results", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_results_model_time")
    op.drop_table("drift_results")
    with op.batch_alter_table("drift_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_profiles_window")
    op.drop_table("drift_profiles")
