"""Declarative base, naming convention and the column types every table shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

from driftloop.clock import utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON documents: JSONB on PostgreSQL, JSON text on SQLite."""

LogDocument = JSON()
"""A logged record's inputs or outputs: ``json`` (the text as written) on PostgreSQL too.

Records are written hundreds of thousands at a time and read back whole, never queried inside:
``json`` only checks the syntax on the way in, where ``jsonb`` builds a binary tree, and gives the
text back as it is, where ``jsonb`` renders it again. Measured on a million records, this is
about 1 s less server time for the label join and cheaper ingest (docs/benchmarks.md).
"""

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit primary key that SQLite still auto-increments (it only does so for INTEGER)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


class Base(DeclarativeBase):
    """Base of every Driftloop table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONType, datetime: UTCDateTime}
