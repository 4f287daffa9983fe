"""The dialect contract for writes: conflicting inserts, upserts, modifying CTEs and bulk
inserts of records behave alike on SQLite and PostgreSQL (see ``test_dialect_contract.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError

from driftloop.contract import Record
from driftloop.store import Model, make_sessionmaker
from driftloop.store.dialect import Dialect
from tests.driftloop.store.support import LABELS, T0, label_rows, labels_of, records, stored

# Writes ------------------------------------------------------------------------------------------


def test_an_insert_that_conflicts_does_nothing(engine: Engine, dialect: Dialect) -> None:
    row = {
        "name": "pets",
        "schema": {},
        "schema_source": "inferred",
        "created_at": T0,
        "updated_at": T0,
    }
    for _ in range(2):
        with make_sessionmaker(engine).begin() as session:
            session.execute(dialect.insert(Model).on_conflict_do_nothing(), [row])
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Model)) == 1


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("cat", id="string"),
        pytest.param(3, id="int"),
        pytest.param(True, id="bool"),
        pytest.param("line\nbreak", id="newline"),
        pytest.param({"k": [1, 2]}, id="object"),
    ],
)
def test_an_upsert_inserts_then_overwrites_only_the_update_columns(
    engine: Engine, dialect: Dialect, label: Any
) -> None:
    later = T0 + timedelta(hours=1)
    with engine.begin() as connection:
        dialect.upsert(
            connection,
            LABELS,
            label_rows(3),
            key=["model_id", "request_id"],
            update=["label", "updated_at"],
        )
    first = labels_of(engine)
    with engine.begin() as connection:
        dialect.upsert(
            connection,
            LABELS,
            label_rows(4, label=label, at=later),
            key=["model_id", "request_id"],
            update=["label", "updated_at"],
        )
    after = labels_of(engine)
    assert sorted(after) == ["q0", "q1", "q2", "q3"]
    for request_id, row in after.items():
        assert row.label == label
        assert row.updated_at == later
        if request_id in first:
            assert row.id == first[request_id].id  # updated in place, not re-inserted
            assert row.received_at == T0  # not an update column: kept
        else:
            assert row.received_at == later


@pytest.mark.parametrize("request_id", ["line\nbreak", ""], ids=["newline", "empty"])
def test_an_upsert_stores_values_that_need_care_exactly(
    engine: Engine, dialect: Dialect, request_id: str
) -> None:
    rows = label_rows(1)
    rows[0]["request_id"] = request_id
    for label in ("first", "second"):
        rows[0]["label"] = label
        with engine.begin() as connection:
            dialect.upsert(
                connection, LABELS, rows, key=["model_id", "request_id"], update=["label"]
            )
    assert {k: v.label for k, v in labels_of(engine).items()} == {request_id: "second"}


def test_an_upsert_repeated_is_idempotent(engine: Engine, dialect: Dialect) -> None:
    for _ in range(2):
        with engine.begin() as connection:
            dialect.upsert(
                connection,
                LABELS,
                label_rows(5),
                key=["model_id", "request_id"],
                update=["label"],
            )
    assert len(labels_of(engine)) == 5


def test_an_upsert_of_nothing_writes_nothing(engine: Engine, dialect: Dialect) -> None:
    with engine.begin() as connection:
        dialect.upsert(connection, LABELS, [], key=["model_id", "request_id"], update=["label"])
    assert labels_of(engine) == {}


def test_a_delete_inside_a_with_runs_exactly_where_the_dialect_says(
    engine: Engine, dialect: Dialect
) -> None:
    """Retention deletes a batch of records and their labels in one statement only where
    ``modifying_ctes`` holds; elsewhere the statement is refused and deletes nothing."""
    with engine.begin() as connection:
        dialect.upsert(
            connection, LABELS, label_rows(3), key=["model_id", "request_id"], update=["label"]
        )
    statement = text(
        "WITH gone AS (DELETE FROM labels WHERE request_id IN ('q0', 'q1') RETURNING id) "
        "SELECT count(*) FROM gone"
    )
    if dialect.modifying_ctes:
        with engine.begin() as connection:
            assert connection.scalar(statement) == 2
        assert sorted(labels_of(engine)) == ["q2"]
    else:
        with pytest.raises(DBAPIError), engine.begin() as connection:
            connection.scalar(statement)
        assert sorted(labels_of(engine)) == ["q0", "q1", "q2"]


@pytest.mark.parametrize("last", [True, False], ids=["last", "more-to-come"])
def test_records_bulk_inserted_read_back_equal(
    engine: Engine, dialect: Dialect, last: bool
) -> None:
    batch = records(50)
    batch.append(
        Record.model_validate(
            {
                "request_id": "back\\slash",
                "model": "pets",
                "version": "v\\2",
                "timestamp": T0.isoformat(),
                "inputs": {"path": "C:\\temp", "quote": 'say "hi"', "tab": "a\tb", "é": "ü"},
                "outputs": {"prediction": "x\ny"},
            }
        )
    )
    received = T0 + timedelta(minutes=5)
    with engine.begin() as connection:
        new = dialect.insert_records(connection, 7, batch, received, last=last)
    assert len(new) == len(batch)
    rows = stored(engine)
    assert {(request_id, variant) for _, request_id, variant in new} == set(rows)
    for pk, request_id, variant in new:
        assert rows[(request_id, variant)].id == pk
    for r in batch:
        row = rows[(r.request_id, r.variant.value)]
        assert (row.model_id, row.version, row.ts, row.received_at) == (
            7,
            r.version,
            r.timestamp,
            received,
        )
        assert (row.inputs, row.outputs) == (r.inputs, r.outputs)
        assert (row.latency_ms, row.status) == (r.latency_ms, r.status)


def test_records_already_stored_are_skipped_and_only_new_ones_returned(
    engine: Engine, dialect: Dialect
) -> None:
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, records(10), T0, last=False)
        # A second batch in the same transaction (the stage is emptied between batches).
        again = dialect.insert_records(connection, 1, records(15), T0, last=True)
    assert sorted(request_id for _, request_id, _ in again) == sorted(
        f"r{i}" for i in range(10, 15)
    )
    with engine.begin() as connection:
        assert dialect.insert_records(connection, 1, records(15), T0) == []
        assert dialect.insert_records(connection, 1, [], T0) == []
    assert len(stored(engine)) == 15


def test_a_rolled_back_bulk_insert_leaves_nothing(engine: Engine, dialect: Dialect) -> None:
    def insert_then_fail() -> None:
        with engine.begin() as connection:
            dialect.insert_records(connection, 1, records(5), T0)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        insert_then_fail()
    assert stored(engine) == {}
    with engine.begin() as connection:  # and the stage works again afterwards
        assert len(dialect.insert_records(connection, 1, records(5), T0)) == 5
