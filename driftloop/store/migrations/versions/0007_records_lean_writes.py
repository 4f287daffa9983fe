"""records: one index fewer, no foreign key to models

Every index and check on ``records`` is paid on every inserted row. Two bought nothing:

- the index on ``request_id`` alone served one query (the models whose records show a request
  id, for labels that name no model) that the unique key serves as well once it leads with the
  request id: ``(request_id, model_id, variant)`` instead of ``(model_id, request_id,
  variant)``. Queries by model and time use ``ix_records_model_ts``, the label join gives both
  the model and the request id. Maintaining the extra B-tree (random keys) took about a sixth of
  PostgreSQL's insert time;
- the foreign key ran a per-row trigger (``SELECT … FOR KEY SHARE`` on ``models``) that took
  about a fifth. Records are written only by ingest, with the model's id read or created in the
  same transaction, and Driftloop never deletes a model. Deleting one by hand now means deleting
  its records first (``DELETE FROM records WHERE model_id = …``): the cascade is gone.

Building the new unique index reads the whole table under a lock that blocks writes: on a large
PostgreSQL store, plan the upgrade window. On SQLite the table is rebuilt.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 19:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint("fk_records_model_id_models", type_="foreignkey")
        batch_op.drop_constraint("uq_records_model_id_request_id_variant", type_="unique")
        batch_op.drop_index("ix_records_request_id")
        batch_op.create_unique_constraint(
            "uq_records_request_id_model_id_variant", ["request_id", "model_id", "variant"]
        )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_records_request_id_model_id_variant", type_="unique")
        batch_op.create_unique_constraint(
            "uq_records_model_id_request_id_variant", ["model_id", "request_id", "variant"]
        )
        batch_op.create_index("ix_records_request_id", ["request_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_records_model_id_models", "models", ["model_id"], ["id"], ondelete="CASCADE"
        )
