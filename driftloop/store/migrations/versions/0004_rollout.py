"""rollout: routing policies, rollouts and their decisions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:50:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.store.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts() -> driftloop.store.base.UTCDateTime:
    return driftloop.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "routing_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("sticky_key", sa.String(length=200), nullable=True),
        sa.Column("champion_version", sa.String(length=200), nullable=False),
        sa.Column("champion_url", sa.Text(), nullable=True),
        sa.Column("challenger_version", sa.String(length=200), nullable=True),
        sa.Column("challenger_url", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_routing_policies_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_policies")),
        sa.UniqueConstraint("model_id", name=op.f("uq_routing_policies_model_id")),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("champion_version", sa.String(length=200), nullable=False),
        sa.Column("challenger_version", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", _ts(), nullable=False),
        sa.Column("phase_started_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("config", _json(), nullable=False),
        sa.Column("progress", _json(), nullable=False),
        sa.Column("evidence", _json(), nullable=True),
        sa.Column("evaluated_at", _ts(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_rollouts_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index("ix_rollouts_model_status", ["model_id", "status"], unique=False)

    op.create_table(
        "rollout_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("from_step", sa.Integer(), nullable=False),
        sa.Column("to_step", sa.Integer(), nullable=False),
        sa.Column("evidence", _json(), nullable=True),
        sa.Column("decided_at", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_rollout_decisions_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_decisions_rollout_id_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_decisions")),
    )
    with op.batch_alter_table("rollout_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rollout_decisions_model_id"), ["model_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_rollout_decisions_rollout_id"), ["rollout_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rollout_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollout_decisions_rollout_id"))
        batch_op.drop_index(batch_op.f("ix_rollout_decisions_model_id"))
    op.drop_table("rollout_decisions")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_rollouts_model_status")
    op.drop_table("rollouts")
    op.drop_table("routing_policies")
