"""cloudevent_halves: KServe payload-logger halves waiting for their pair; inferred schemas
drop the default layout they stored, so senders infer rows per route (issue 23)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import driftloop.store.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cloudevent_halves",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("event_time", driftloop.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", driftloop.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloudevent_halves")),
        sa.UniqueConstraint(
            "model", "event_id", "kind", name=op.f("uq_cloudevent_halves_model_event_id_kind")
        ),
    )
    op.create_index(
        "ix_cloudevent_halves_received_at", "cloudevent_halves", ["received_at"], unique=False
    )
    _forget_default_layouts()


# The layout every schema stored before layouts were inferred: in a schema nobody registered it
# was never a decision, so it becomes "not declared" (registered schemas keep theirs).
_OLD_DEFAULT = {"input_path": "inputs", "output_path": "", "columns": None}


def _forget_default_layouts() -> None:
    models = sa.table(
        "models",
        sa.column("id", sa.Integer()),
        sa.column("schema", driftloop.store.base.JSONType),
        sa.column("schema_source", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(models.c.id, models.c.schema).where(models.c.schema_source != "registered")
    ).all()
    for model_id, schema in rows:
        if isinstance(schema, dict) and schema.get("layout") == _OLD_DEFAULT:
            bind.execute(
                models.update()
                .where(models.c.id == model_id)
                .values(schema={**schema, "layout": None})
            )


def downgrade() -> None:
    op.drop_index("ix_cloudevent_halves_received_at", table_name="cloudevent_halves")
    op.drop_table("cloudevent_halves")
