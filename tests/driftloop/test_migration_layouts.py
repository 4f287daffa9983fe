"""Migration 0009: schemas nobody registered forget the default layout they stored, so senders
infer rows per route; registered schemas keep theirs."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from driftloop.store import make_engine, upgrade

OLD_DEFAULT = {"input_path": "inputs", "output_path": "", "columns": None}


def test_only_unregistered_schemas_lose_the_old_default_layout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    try:
        upgrade(engine, "0008")
        insert = text(
            "INSERT INTO models (name, schema, schema_source, created_at, updated_at) "
            "VALUES (:name, :schema, :source, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"
        )
        with engine.begin() as connection:
            for name, source, layout in [
                ("auto", "inferred", OLD_DEFAULT),
                ("mine", "registered", OLD_DEFAULT),
                ("custom", "inferred", {**OLD_DEFAULT, "input_path": "rows"}),
            ]:
                schema = {"features": [], "layout": layout}
                connection.execute(
                    insert, {"name": name, "schema": json.dumps(schema), "source": source}
                )
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, schema FROM models")).all()
        layouts = {name: json.loads(schema)["layout"] for name, schema in rows}
    finally:
        engine.dispose()
    assert layouts == {
        "auto": None,
        "mine": OLD_DEFAULT,
        "custom": {**OLD_DEFAULT, "input_path": "rows"},
    }
