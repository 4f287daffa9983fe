"""reference_versions: a reference dataset may belong to one version of a model

``reference_datasets.version`` names the version trained on the dataset (the snapshot named by
the training callback, or an upload with ``?version=``). Drift and skew of a version are measured
against its own reference; versions without one use the champion's, else the model's newest
unversioned reference. Existing rows stay unversioned: nothing changes until a version brings one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reference_datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_datasets", schema=None) as batch_op:
        batch_op.drop_column("version")
