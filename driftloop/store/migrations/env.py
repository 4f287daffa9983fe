"""Alembic environment: uses the connection handed in by :func:`driftloop.store.migrate.upgrade`
or, from the ``alembic`` command line, the URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from driftloop.store import Base
from driftloop.store.engine import make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
