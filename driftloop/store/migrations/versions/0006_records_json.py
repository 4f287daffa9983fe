"""records: inputs and outputs as json (the text as written) instead of jsonb on PostgreSQL

Records are written in bulk and read back whole (the label join, drift, the evaluation report);
nothing queries inside them. ``json`` skips building and re-rendering jsonb's binary form on the
two hot paths. SQLite stores JSON as text either way: nothing changes there.

The type change rewrites the table: on a large PostgreSQL store, plan for the ``ACCESS
EXCLUSIVE`` lock it takes for the duration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 14:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("inputs", "outputs")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    changes = ", ".join(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}" for c in COLUMNS)
    op.execute(f"ALTER TABLE records {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
