"""Errors of the dialect seam."""

from __future__ import annotations

from driftloop.errors import ConfigurationError, DriftloopError

__all__ = ["UnknownDialectError", "UnsupportedOperationError"]


class UnknownDialectError(ConfigurationError):
    """A database Driftloop has no dialect for (it supports SQLite and PostgreSQL)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no Driftloop dialect for database {name!r}: use sqlite or postgresql")
        self.name = name


class UnsupportedOperationError(DriftloopError, NotImplementedError):
    """An operation the database cannot do (check the dialect's capability flag first)."""

    def __init__(self, dialect: str, operation: str) -> None:
        super().__init__(f"{operation} is not available on {dialect}")
        self.dialect = dialect
        self.operation = operation
