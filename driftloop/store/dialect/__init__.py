"""The store seam: what differs between SQLite and PostgreSQL, behind one :class:`Dialect`.

Code above the store never tests a database's name; it asks the dialect of its engine::

    dialect = dialect_of(session)
    session.execute(dialect.insert(Model).on_conflict_do_nothing(), rows)

:data:`DIALECTS` is the explicit table of implementations (no registration by import side
effect). :func:`dialect_of` picks one per engine, once, and caches it on the engine as
``driftloop.store.engine.reader`` does. ``tests/driftloop/store/test_dialect_contract.py`` runs
one suite against both; ``tests/driftloop/store/test_dialect_branches.py`` keeps name tests from
coming back.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.store.dialect.choice import DIALECTS, dialect_named, dialect_of
    from driftloop.store.dialect.errors import UnknownDialectError, UnsupportedOperationError
    from driftloop.store.dialect.postgresql import PostgresDialect
    from driftloop.store.dialect.protocol import Dialect, LeaderLock, StagedRow
    from driftloop.store.dialect.sqlite import SqliteDialect
    from driftloop.store.partitions import DroppedPartition, Partition

__all__ = [
    "DIALECTS",
    "Dialect",
    "DroppedPartition",
    "LeaderLock",
    "Partition",
    "PostgresDialect",
    "SqliteDialect",
    "StagedRow",
    "UnknownDialectError",
    "UnsupportedOperationError",
    "dialect_named",
    "dialect_of",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.store.dialect.choice": ("DIALECTS", "dialect_named", "dialect_of"),
        "driftloop.store.dialect.errors": ("UnknownDialectError", "UnsupportedOperationError"),
        "driftloop.store.dialect.postgresql": ("PostgresDialect",),
        "driftloop.store.dialect.protocol": ("Dialect", "LeaderLock", "StagedRow"),
        "driftloop.store.dialect.sqlite": ("SqliteDialect",),
        "driftloop.store.partitions": ("DroppedPartition", "Partition"),
    },
)
