"""The bulk write path of ingest, shared by both dialects: stage a batch, then move what is new.

Rows go into a per-connection temporary table (PostgreSQL ``COPY``; SQLite ``executemany``; each
dialect writes its own stage) and from there into ``records`` with ``INSERT … SELECT … ON
CONFLICT DO NOTHING RETURNING``, which both deduplicates against rows already stored
(concurrency-safe: the unique constraint decides) and tells exactly which rows are new. This is
several times faster than an ORM or ``insertmanyvalues`` insert, whose per-batch SQL rendering
dominated ingest. The staging table is created "if not exists" on every call: DDL is
transactional on both databases, so a batch that rolls back also takes away a table it created.
"""

from __future__ import annotations

__all__ = ["COLUMNS", "COLUMN_LIST", "MOVE"]

COLUMNS = (
    "model_id",
    "version",
    "variant",
    "request_id",
    "ts",
    "inputs",
    "outputs",
    "latency_ms",
    "status",
    "received_at",
)
"""The columns of ``records`` a record fills, in the stage's order."""

COLUMN_LIST = ", ".join(COLUMNS)

MOVE = (
    f"INSERT INTO records ({COLUMN_LIST}) SELECT {COLUMN_LIST} FROM records_stage WHERE true "
    "ON CONFLICT DO NOTHING RETURNING id, request_id, variant"
)
"""From the stage into ``records``: the new rows' ``(id, request_id, variant)``.

No conflict target: the unique key is ``(request_id, model_id, variant)`` on SQLite and on an
unpartitioned PostgreSQL table, ``(request_id, model_id, variant, ts)`` once migration 0011
partitions ``records`` by ``ts``; a re-sent record carries its timestamp, so both drop it."""
