"""webhooks: retraining policies, trigger log, webhook endpoints, outbox and delivery attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.store.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("url", name=op.f("uq_webhook_endpoints_url")),
    )
    op.create_table(
        "retrain_condition_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("active_since", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fired_trigger_id", sa.Integer(), nullable=True),
        sa.Column("next_due_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_retrain_condition_state_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_condition_state")),
        sa.UniqueConstraint(
            "model_id", "condition", name=op.f("uq_retrain_condition_state_model_id_condition")
        ),
    )
    op.create_table(
        "retrain_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column(
            "policy",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_retrain_policies_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_policies")),
        sa.UniqueConstraint("model_id", name=op.f("uq_retrain_policies_model_id")),
    )
    op.create_table(
        "retrain_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("snapshot_id", sa.String(length=200), nullable=True),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("fired_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_retrain_triggers_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_triggers")),
    )
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retrain_triggers_model_fired", ["model_id", "fired_at"], unique=False
        )

    op.create_table(
        "webhook_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("trigger_id", sa.Integer(), nullable=True),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_outbox_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_webhook_outbox_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["retrain_triggers.id"],
            name=op.f("fk_webhook_outbox_trigger_id_retrain_triggers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_webhook_outbox_webhook_id")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_outbox_model_id"), ["model_id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["webhook_outbox.id"],
            name=op.f("fk_webhook_attempts_message_id_webhook_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_attempts_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_message_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_model_id"))
        batch_op.drop_index("ix_webhook_outbox_due")

    op.drop_table("webhook_outbox")
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.drop_index("ix_retrain_triggers_model_fired")

    op.drop_table("retrain_triggers")
    op.drop_table("retrain_policies")
    op.drop_table("retrain_condition_state")
    op.drop_table("webhook_endpoints")
