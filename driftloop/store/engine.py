"""Engines and sessions for SQLite (one machine) and PostgreSQL (many machines)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


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
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (responses read them)."""
    return sessionmaker(engine, expire_on_commit=False)
