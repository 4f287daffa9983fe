"""Engines and sessions for SQLite (one machine) and PostgreSQL (many machines)."""

from __future__ import annotations

import sqlite3
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, SessionTransactionOrigin, sessionmaker

READ_ONLY = "driftloop_read_only"
"""Execution option of a SQLite connection that only reads: it begins a deferred transaction."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for Driftloop's access pattern on either database."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": 10,
        "max_overflow": 10,
        "connect_args": {"connect_timeout": 5},
    }
    options.update(kwargs)
    return create_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets the status page read while ingest writes; NORMAL sync is durable across a process
    # crash (what the monitor guarantees) and much faster than FULL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # SQLAlchemy emits BEGIN itself (below); the driver's implicit transactions are off.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # A deferred transaction that reads, then writes, fails at once with "database is locked"
    # when another writer committed in between (the busy timeout does not apply to that case).
    # Taking the write lock up front makes concurrent writers (ingest, jobs) wait their turn.
    # Readers (READ_ONLY) begin deferred: in WAL mode they never wait for a writer, so /readyz
    # and GETs answer while a job holds the write lock.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_READERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def reader(engine: Engine) -> Engine:
    """``engine`` for connections that only read (on SQLite: no write lock taken)."""
    found = _READERS.get(engine)
    if found is None:
        found = _READERS[engine] = engine.execution_options(**{READ_ONLY: True})
    return found


class _Session(Session):
    """A session that reads without the write lock unless it was begun explicitly.

    ``sessions.begin()`` (every writer) takes SQLite's write lock up front; a session that only
    autobegins (``with sessions() as session:``, every reader) runs deferred.
    """

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        bind = super().get_bind(*args, **kwargs)
        if not isinstance(bind, Engine) or bind.dialect.name != "sqlite":
            return bind
        transaction = self.get_transaction()
        if transaction is None or transaction.origin is SessionTransactionOrigin.AUTOBEGIN:
            return reader(bind)
        return bind


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses read them)."""
    return sessionmaker(engine, class_=_Session, expire_on_commit=False)
