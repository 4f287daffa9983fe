"""Which database failures mean "unavailable, retry later" and which never go away.

The monitor answers 503 (senders retry) only when the database is unreachable, locked, busy or
out of resources for a while. A statement the database refuses every time it is sent (SQLite's
expression-depth or variable limits, PostgreSQL's program limits, a programming error) must not
get a 503, or a sender retries it forever.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

__all__ = ["database_unavailable", "failure_name"]

# SQLite operational errors that repeat for the same statement whatever the load.
_SQLITE_DETERMINISTIC = (
    "expression tree is too large",
    "too many sql variables",
    "too many terms",
    "too many columns",
    "string or blob too big",
    "parser stack overflow",
    "pattern too complex",
    "too many arguments",
    "syntax error",
)
_PG_PROGRAM_LIMIT = "54"  # SQLSTATE class: program limit exceeded (stack depth, too many columns)


def database_unavailable(exc: SQLAlchemyError) -> bool:
    """True when ``exc`` says the database cannot serve now (a retry may succeed)."""
    if isinstance(exc, PoolTimeoutError | DisconnectionError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return not any(text in message for text in _SQLITE_DETERMINISTIC)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return not (isinstance(sqlstate, str) and sqlstate.startswith(_PG_PROGRAM_LIMIT))


def failure_name(exc: SQLAlchemyError) -> str:
    """A short name of the failure for logs and 5xx bodies (never the statement or its values)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return type(orig).__name__ if orig is not None else type(exc).__name__
