"""One contract for every dialect: the same observable behaviour on SQLite and on PostgreSQL.

Each test runs once per database (the ``database_url`` fixture) against the dialect of a real,
migrated database. Where a database cannot do something at all, its capability flag says so and
the operation raises :class:`UnsupportedOperationError`; everything else must read back alike.

This file checks the choice of the dialect and the protocol itself; the behaviour is checked by
``test_dialect_contract_writes.py``, ``test_dialect_contract_reads.py`` and
``test_dialect_contract_locks_sizes.py`` (shared helpers in ``support.py``, fixtures in
``conftest.py``).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from driftloop.store import make_sessionmaker
from driftloop.store.dialect import (
    DIALECTS,
    Dialect,
    UnknownDialectError,
    dialect_named,
    dialect_of,
)

# Choice of the dialect ---------------------------------------------------------------------------


def test_the_dialect_is_chosen_once_per_engine_and_matches_the_database(
    engine: Engine, dialect: Dialect
) -> None:
    assert dialect.name == engine.dialect.name
    assert isinstance(dialect, DIALECTS[engine.dialect.name])
    assert dialect_of(engine) is dialect
    with engine.connect() as connection:
        assert dialect_of(connection) is dialect
    with make_sessionmaker(engine).begin() as session:
        assert dialect_of(session) is dialect


def test_an_unknown_database_is_refused_by_name() -> None:
    with pytest.raises(UnknownDialectError, match="'oracle'"):
        dialect_named("oracle")


def members() -> list[str]:
    """Every member of the :class:`Dialect` protocol: attributes, then methods."""
    methods = [n for n, v in vars(Dialect).items() if not n.startswith("_") and callable(v)]
    return list(Dialect.__annotations__) + sorted(methods)


FLAG_TYPES = {"str": str, "bool": bool, "float": float}


@pytest.mark.parametrize("kind", sorted(DIALECTS))
def test_each_implementation_has_every_member_with_the_protocols_signature(kind: str) -> None:
    implementation = DIALECTS[kind]()
    assert implementation.name == kind
    for name, annotation in Dialect.__annotations__.items():
        assert isinstance(getattr(implementation, name), FLAG_TYPES[annotation]), name
    for name in members():
        if name in Dialect.__annotations__:
            continue
        wanted = inspect.signature(getattr(Dialect, name))
        got = inspect.signature(getattr(DIALECTS[kind], name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in wanted.parameters.values()
        ], name


def test_the_contract_exercises_every_member() -> None:
    """Each member of the protocol is called (or read) somewhere in this suite (this file and the
    ``test_dialect_contract_*.py`` beside it), which runs every test on both databases."""
    files = sorted(Path(__file__).parent.glob("test_dialect_contract*.py"))
    assert len(files) > 1, files
    source = "\n".join(f.read_text() for f in files)
    unused = [n for n in members() if not re.search(rf"\b(?:dialect|d)\.{n}\b", source)]
    assert unused == []


def test_a_pause_between_retention_batches_only_where_writers_exclude_each_other(
    dialect: Dialect,
) -> None:
    """A pause between retention batches exists for writers that exclude each other (SQLite's
    write lock, where no row locks are needed)."""
    assert dialect.prune_pause_seconds >= 0
    assert (dialect.prune_pause_seconds > 0) is (not dialect.locks_rows)
