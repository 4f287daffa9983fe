"""The explicit table of dialects, and the choice of one per engine."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from driftloop.store.dialect.errors import UnknownDialectError
from driftloop.store.dialect.postgresql import PostgresDialect
from driftloop.store.dialect.protocol import Dialect
from driftloop.store.dialect.sqlite import SqliteDialect

__all__ = ["DIALECTS", "dialect_named", "dialect_of"]

DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SqliteDialect,
    "postgresql": PostgresDialect,
}
"""Every supported database, by SQLAlchemy's dialect name."""

_OF_ENGINE: WeakKeyDictionary[Engine, Dialect] = WeakKeyDictionary()


def dialect_named(name: str) -> Dialect:
    """A new dialect for SQLAlchemy's dialect ``name``; raises :class:`UnknownDialectError`."""
    try:
        kind = DIALECTS[name]
    except KeyError:
        raise UnknownDialectError(name) from None
    return kind()


def dialect_of(bind: Engine | Connection | Session | Any) -> Dialect:
    """The dialect of ``bind``'s engine (an engine, a connection or a session), made on first
    use and cached per engine."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    engine: Engine = bind.engine if isinstance(bind, Connection) else bind
    found = _OF_ENGINE.get(engine)
    if found is None:
        found = _OF_ENGINE[engine] = dialect_named(engine.dialect.name)
    return found
