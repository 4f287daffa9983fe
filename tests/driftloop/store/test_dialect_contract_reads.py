"""The dialect contract for reads: lists of values, isolated failures, JSON scalars and
documents, timestamps and Arrow batches read back alike on SQLite and PostgreSQL (see
``test_dialect_contract.py``)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, String, literal, select
from sqlalchemy.exc import IntegrityError

from driftloop.feedback.sql import Extractor, decode
from driftloop.store import make_sessionmaker
from driftloop.store.dialect import Dialect, SqliteDialect, UnsupportedOperationError
from tests.driftloop.store.support import LABELS, RECORDS, T0, label_rows, labels_of, records

# Reads -------------------------------------------------------------------------------------------


def test_among_finds_every_listed_value_whatever_the_list_length(
    engine: Engine, dialect: Dialect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteDialect, "chunk", 7)  # several chunks where there are chunks
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, records(40), T0)
    wanted = [f"r{i}" for i in range(0, 40, 2)] + ["missing"]
    found: list[str] = []
    with engine.connect() as connection:
        for condition in dialect.among(RECORDS.c.request_id, wanted):
            found += connection.scalars(select(RECORDS.c.request_id).where(condition)).all()
    assert sorted(found) == sorted(wanted[:-1])


@pytest.mark.parametrize("count", [1, 3, 2000])
def test_listed_binds_a_list_of_any_length_as_one_parameter(
    engine: Engine, dialect: Dialect, count: int
) -> None:
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, records(30), T0)
    statement = select(RECORDS.c.request_id).where(
        dialect.listed(RECORDS.c.request_id, "ids", String())
    )
    wanted = [f"r{i}" for i in range(count)]
    with engine.connect() as connection:
        found = connection.scalars(statement, {"ids": wanted}).all()
    assert sorted(found) == sorted(r for r in wanted if int(r[1:]) < 30)


def test_a_failure_inside_isolated_leaves_the_transaction_usable(
    engine: Engine, dialect: Dialect
) -> None:
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.connection().execute(LABELS.insert(), label_rows(1))
        with pytest.raises(IntegrityError), dialect.isolated(session):
            session.connection().execute(LABELS.insert(), label_rows(1))  # duplicate key
        session.connection().execute(LABELS.insert(), label_rows(2)[1:])
    assert sorted(labels_of(engine)) == ["q0", "q1"]


LABEL_VALUES: list[Any] = ["cat", "", 3, -2.5, 10**15, True, False, {"a": [1, "b"]}, [1, 2.5]]


def test_json_scalars_decode_to_the_stored_values(engine: Engine, dialect: Dialect) -> None:
    rows = label_rows(len(LABEL_VALUES))
    for row, value in zip(rows, LABEL_VALUES, strict=True):
        row["label"] = value
    with engine.begin() as connection:
        connection.execute(LABELS.insert(), rows)
    value, kind = dialect.json_scalar(LABELS.c.label)
    with engine.connect() as connection:
        got = connection.execute(
            select(LABELS.c.request_id, value, kind).order_by(LABELS.c.id)
        ).all()
    decoded = decode(pd.Series([g[1] for g in got]), pd.Series([g[2] for g in got])).tolist()
    assert [type(v) for v in decoded] == [type(v) for v in LABEL_VALUES]
    assert decoded == LABEL_VALUES


def test_a_json_scalar_is_found_by_its_path(engine: Engine, dialect: Dialect) -> None:
    with engine.begin() as connection:
        connection.execute(LABELS.insert(), label_rows(1, label={"outer": {"inner": 7, "s": "x"}}))
    number, number_kind = dialect.json_scalar(LABELS.c.label, "outer", "inner")
    string, string_kind = dialect.json_scalar(LABELS.c.label, "outer", "s")
    missing, _ = dialect.json_scalar(LABELS.c.label, "outer", "nope")
    with engine.connect() as connection:
        row = connection.execute(select(number, number_kind, string, string_kind, missing)).one()
    assert decode(pd.Series([row[0]]), pd.Series([row[1]])).tolist() == [7]
    assert (row[2], row[3], row[4]) == ("x", None, None)


def test_documents_read_as_text_and_timestamps_decode_alike(
    engine: Engine, dialect: Dialect
) -> None:
    batch = records(3)
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, batch, T0)
    statement = select(
        RECORDS.c.request_id,
        dialect.json_text(RECORDS.c.inputs),
        dialect.raw_timestamp(RECORDS.c.ts),
    ).order_by(RECORDS.c.id)
    with engine.connect() as connection:
        got = connection.execute(statement).all()
    by_id = {r.request_id: r for r in batch}
    assert [json.loads(g[1]) for g in got] == [by_id[g[0]].inputs for g in got]
    stamps = Extractor(dialect).timestamps([g[2] for g in got]).tolist()
    assert stamps == [by_id[g[0]].timestamp for g in got]


def test_arrow_batches_stream_the_rows_a_query_returns_or_are_refused(
    engine: Engine, dialect: Dialect
) -> None:
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, records(25), T0)
    statement = (
        select(RECORDS.c.request_id, RECORDS.c.status)
        .where(RECORDS.c.model_id == literal(1))
        .order_by(RECORDS.c.request_id)
    )
    if not dialect.reads_arrow:
        with pytest.raises(UnsupportedOperationError, match="arrow_batches"):
            dialect.arrow_batches(engine, statement, batch_bytes=1 << 20)
        return
    import pyarrow as pa

    with dialect.arrow_batches(engine, statement, batch_bytes=1 << 20) as reader:
        table = pa.Table.from_batches(list(reader), reader.schema)
    with engine.connect() as connection:
        expected = [tuple(r) for r in connection.execute(statement).all()]
    assert list(zip(*(table.column(i).to_pylist() for i in range(2)), strict=True)) == expected
