"""The public surface and the 0005 migration of the retraining component."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import driftloop.feedback.triggers as triggers
import driftloop.feedback.webhooks as webhooks
from driftloop.store import Base, make_engine
from driftloop.store.migrate import alembic_config
from tests.feedback.webhooks.conftest import BOTH_DATABASES

TABLES = {
    "retrain_policies",
    "retrain_condition_state",
    "retrain_triggers",
    "webhook_endpoints",
    "webhook_outbox",
    "webhook_attempts",
}


def test_the_public_names_are_pinned() -> None:
    assert webhooks.__all__ == [
        "AttemptResult",
        "Deliverer",
        "UnknownEndpointError",
        "UnknownMessageError",
        "WebhookMetrics",
        "enable_endpoint",
        "encode_body",
        "enqueue",
        "get_message",
        "headers",
        "new_message_id",
        "new_secret",
        "parse_secrets",
        "replay",
        "retry_delay",
        "sign",
    ]
    assert triggers.__all__ == [
        "REASONS",
        "CooldownError",
        "DegradationRule",
        "DriftRule",
        "Finding",
        "Fired",
        "RetrainingPolicy",
        "SnapshotSpec",
        "callback_url",
        "evaluate_all",
        "evaluate_model",
        "fire",
        "install",
        "load_policy",
        "manual",
        "payload",
        "save_policy",
    ]
    for module in (webhooks, triggers):
        assert all(hasattr(module, name) for name in module.__all__)


@BOTH_DATABASES
def test_migration_0005_matches_the_tables_and_downgrades(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = [
                d
                for d in compare_metadata(context, Base.metadata)
                if any(t in repr(d) for t in TABLES)
            ]
            assert diffs == []
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
            assert "models" in inspect(connection).get_table_names()
    finally:
        engine.dispose()
