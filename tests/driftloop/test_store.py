"""Migrations: an empty SQLite file and an empty PostgreSQL database upgrade alike, and the
migrations create exactly the tables the SQLAlchemy models declare."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from driftloop.store import Base, head_revisions, is_current, make_engine, upgrade
from driftloop.store.migrate import current_revisions
from driftloop.store.partitions import include_object


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
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": False, "include_object": include_object(connection)},
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_there_is_a_single_migration_head() -> None:
    assert len(head_revisions()) == 1, f"several heads: {sorted(head_revisions())}"


def test_records_keep_their_documents_as_json_text_and_survive_a_downgrade(
    empty_engine: Engine,
) -> None:
    """0006: inputs and outputs are ``json`` on PostgreSQL (the text as written), and going back
    to ``jsonb`` and forth again keeps every document."""
    from alembic import command

    from driftloop.store.migrate import alembic_config

    upgrade(empty_engine)
    document = '{"b": 1, "a": [1.5, "x"], "c": null}'
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO models (name, schema, schema_source, created_at,"
                " updated_at) VALUES ('m', '{}', 'inferred', '2026-01-01',"
                " '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, outputs,"
                " latency_ms, status, received_at) SELECT id, 'v1', 'champion', 'r1',"
                " '2026-01-01', :doc, :doc, 1.0, 200, '2026-01-01' FROM models"
            ),
            {"doc": document},
        )

    def stored() -> tuple[str, str]:
        with empty_engine.connect() as connection:
            if empty_engine.dialect.name == "postgresql":
                kind = connection.scalar(text("SELECT pg_typeof(inputs)::text FROM records"))
            else:
                kind = "json"
            return str(kind), str(
                connection.scalar(text("SELECT CAST(inputs AS TEXT) FROM records"))
            )

    assert stored() == ("json", document), "the text as written, key order and spaces kept"
    config = alembic_config(empty_engine.url.render_as_string(hide_password=False))
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    kind, back = stored()
    assert kind == ("jsonb" if empty_engine.dialect.name == "postgresql" else "json")
    assert json.loads(back) == json.loads(document)
    upgrade(empty_engine)
    assert stored()[0] == "json"


def test_records_are_found_by_request_id_alone_through_an_index(empty_engine: Engine) -> None:
    """A label that names no model finds its records by request id alone (0007 made the unique
    key lead with it and dropped the separate index); every other query names the model."""
    from sqlalchemy import inspect

    upgrade(empty_engine)
    inspector = inspect(empty_engine)
    leading = {i["column_names"][0] for i in inspector.get_indexes("records")} | {
        u["column_names"][0] for u in inspector.get_unique_constraints("records")
    }
    assert leading == {"request_id", "model_id"}
    assert inspector.get_foreign_keys("records") == []
