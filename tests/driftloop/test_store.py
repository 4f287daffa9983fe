"""Migrations: an empty SQLite file and an empty PostgreSQL database upgrade alike, and the
migrations create exactly the tables the SQLAlchemy models declare."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from driftloop.store import Base, head_revisions, is_current, make_engine, upgrade
from driftloop.store.migrate import current_revisions


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
        yield engine
        engine.dispose()
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    name = f"driftloop_empty_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_an_empty_database_upgrades_to_every_head(empty_engine: Engine) -> None:
    assert current_revisions(empty_engine) == set()
    assert not is_current(empty_engine)
    upgrade(empty_engine)
    assert current_revisions(empty_engine) == head_revisions()
    assert is_current(empty_engine)
    upgrade(empty_engine)  # a second upgrade is a no-op
    assert is_current(empty_engine)


def test_the_migrations_match_the_models(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_there_is_a_single_migration_head() -> None:
    assert len(head_revisions()) == 1, f"several heads: {sorted(head_revisions())}"
