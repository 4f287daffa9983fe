"""Alembic, driven from code: upgrade an empty database and tell whether one is current."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from driftloop.store.dialect import dialect_of
from driftloop.store.partitions import DEFAULT_DAYS_AHEAD

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` that needs no ``alembic.ini`` on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(
    engine: Engine, revision: str = "heads", *, partitions_ahead_days: int = DEFAULT_DAYS_AHEAD
) -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (all heads by default), then make
    sure the partitioned tables (PostgreSQL, 0011 on) have day partitions from today to
    ``partitions_ahead_days`` ahead, so that a fresh database ingests at once (the dialect's
    ``ensure_partitions``: nothing to do on SQLite)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        dialect_of(connection).ensure_partitions(
            connection, datetime.now(UTC).date(), partitions_ahead_days
        )


def head_revisions() -> set[str]:
    """The revisions a fully migrated database is at."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return set(script.get_heads())


def current_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at now (empty for a database never migrated)."""
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def is_current(engine: Engine) -> bool:
    """True when the database is migrated to every head."""
    return current_revisions(engine) == head_revisions()
