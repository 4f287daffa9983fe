"""One contract for every dialect: the same observable behaviour on SQLite and on PostgreSQL.

Each test runs once per database (the ``database_url`` fixture) against the dialect of a real,
migrated database. Where a database cannot do something at all, its capability flag says so and
the operation raises :class:`UnsupportedOperationError`; everything else must read back alike.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from sqlalchemy import Engine, String, Table, func, literal, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from driftloop.contract import Record
from driftloop.feedback.sql import Extractor, decode
from driftloop.store import LabelRow, Model, RecordRow, make_engine, make_sessionmaker
from driftloop.store.dialect import (
    DIALECTS,
    Dialect,
    SqliteDialect,
    UnknownDialectError,
    UnsupportedOperationError,
    dialect_named,
    dialect_of,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LABELS = cast(Table, LabelRow.__table__)
RECORDS = cast(Table, RecordRow.__table__)
LEADER_KEY = 0x44524946544C4F4F


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
def dialect(engine: Engine) -> Dialect:
    return dialect_of(engine)


def records(n: int, *, prefix: str = "r", start: int = 0) -> list[Record]:
    return [
        Record.model_validate(
            {
                "request_id": f"{prefix}{i}",
                "model": "pets",
                "version": "v1",
                "variant": "shadow" if i % 3 == 0 else "champion",
                "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                "inputs": {"size": i / 2, "color": "red", "tags": ["a", i], "note": None},
                "outputs": {"prediction": i % 2, "probabilities": {"0": 0.25, "1": 0.75}},
                "latency_ms": 1.5 + i,
                "status": 200,
            }
        )
        for i in range(start, start + n)
    ]


def stored(engine: Engine) -> dict[tuple[str, str], RecordRow]:
    with make_sessionmaker(engine)() as session:
        return {(r.request_id, r.variant): r for r in session.scalars(select(RecordRow))}


def label_rows(n: int, *, label: Any = "cat", at: datetime = T0) -> list[dict[str, Any]]:
    return [
        {
            "model_id": 1,
            "request_id": f"q{i}",
            "label": label,
            "label_ts": at,
            "received_at": at,
            "updated_at": at,
            "corrections": 0,
        }
        for i in range(n)
    ]


def labels_of(engine: Engine) -> dict[str, LabelRow]:
    with make_sessionmaker(engine)() as session:
        return {row.request_id: row for row in session.scalars(select(LabelRow))}


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
    """Each member of the protocol is called (or read) somewhere in this suite, which runs every
    test on both databases."""
    source = Path(__file__).read_text()
    unused = [n for n in members() if not re.search(rf"\b(?:dialect|d)\.{n}\b", source)]
    assert unused == []


def test_a_pause_between_retention_batches_only_where_writers_exclude_each_other(
    dialect: Dialect,
) -> None:
    """A pause between retention batches exists for writers that exclude each other (SQLite's
    write lock, where no row locks are needed)."""
    assert dialect.prune_pause_seconds >= 0
    assert (dialect.prune_pause_seconds > 0) is (not dialect.locks_rows)


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


# Claims and leadership ---------------------------------------------------------------------------


def test_a_row_claimed_by_two_writers_at_once_goes_to_exactly_one(
    engine: Engine, dialect: Dialect
) -> None:
    """What webhook delivery relies on: read the row with ``with_for_update=locks_rows``, check
    it is unclaimed, claim it. The pause between read and write lets the other claimer read the
    same row if nothing serialised them."""
    with engine.begin() as connection:
        connection.execute(LABELS.insert(), label_rows(1))
    with make_sessionmaker(engine)() as session:
        row_id = session.scalars(select(LabelRow.id)).one()
    sessions = make_sessionmaker(engine)
    start = threading.Barrier(2)
    claims: list[str] = []

    def claim(name: str) -> None:
        start.wait()
        with sessions.begin() as session:
            row = session.get(LabelRow, row_id, with_for_update=dialect.locks_rows)
            assert row is not None
            if row.corrections == 0:
                time.sleep(0.2)
                row.corrections = 1
                claims.append(name)

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(claims) == 1


def test_the_leader_lock_has_one_holder_among_replicas(database_url: str) -> None:
    """Where the monitor migrates on start, one process owns the database and always leads;
    elsewhere replicas elect one."""
    first, second = make_engine(database_url), make_engine(database_url)
    d = dialect_of(first)
    a = d.leader_lock(first, LEADER_KEY)
    b = dialect_of(second).leader_lock(second, LEADER_KEY)
    try:
        assert a.acquire()
        assert a.acquire()  # still held
        exclusive = not d.migrates_on_start
        assert b.acquire() is not exclusive
        a.release()
        assert b.acquire()
        assert a.acquire() is not exclusive
    finally:
        a.release()
        b.release()
        first.dispose()
        second.dispose()


def test_a_leader_whose_connection_dies_loses_the_lock_to_another(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    first, second = make_engine(database_url), make_engine(database_url)
    a = dialect_of(first).leader_lock(first, LEADER_KEY)
    b = dialect_of(second).leader_lock(second, LEADER_KEY)
    try:
        assert a.acquire()
        if first.dialect.name == "postgresql":
            pg_admin: Engine = request.getfixturevalue("pg_admin")
            with pg_admin.connect() as admin:
                admin.execute(
                    text(
                        # With a timeout it returns once the server process is gone and its
                        # lock freed; without, the next acquire could race the exit.
                        "SELECT pg_terminate_backend(pid, 30000) FROM pg_locks l "
                        "JOIN pg_stat_activity s USING (pid) "
                        "WHERE l.locktype = 'advisory' AND s.datname = :db"
                    ),
                    {"db": first.url.database},
                )
            assert not a.acquire()  # reports the loss, does not raise
        assert b.acquire()
    finally:
        a.release()
        b.release()
        first.dispose()
        second.dispose()


# Sizes and partitions ----------------------------------------------------------------------------


def test_table_sizes_are_non_negative_and_grow_with_inserts(
    engine: Engine, dialect: Dialect
) -> None:
    with engine.connect() as connection:
        rows_before = dialect.table_rows(connection, "records", estimate=False)
        bytes_before = dialect.table_bytes(connection, "records")
        database_before = dialect.database_bytes(connection)
        assert dialect.table_rows(connection, "records") >= 0
    assert rows_before == 0
    assert bytes_before is None or bytes_before >= 0
    assert database_before > 0
    with engine.begin() as connection:
        dialect.insert_records(connection, 1, records(3000), T0)
    with engine.connect() as connection:
        assert dialect.table_rows(connection, "records", estimate=False) == 3000
        assert dialect.table_rows(connection, "records") >= 0
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE records")
    with engine.connect() as connection:
        assert dialect.table_rows(connection, "records") == 3000  # exact after ANALYZE
        bytes_after = dialect.table_bytes(connection, "records")
        assert dialect.database_bytes(connection) > database_before
    if bytes_before is None:
        assert bytes_after is None
    else:
        assert bytes_after is not None
        assert bytes_after > bytes_before


def test_a_table_that_is_not_partitioned_has_its_own_size_and_rows(
    engine: Engine, dialect: Dialect
) -> None:
    """``models`` (like ``labels``, whose key holds for all time) is never partitioned: its bytes
    and rows are the table's own, not a sum over partitions it does not have (which read 0)."""
    rows = [
        {"name": f"m{i}", "schema": {}, "schema_source": "inferred", "created_at": T0}
        | {"updated_at": T0}
        for i in range(50)
    ]
    with make_sessionmaker(engine).begin() as session:
        session.execute(dialect.insert(Model), rows)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    with engine.connect() as connection:
        models = dialect.table_rows(connection, "models", estimate=False)
        assert models == 50
        assert dialect.table_rows(connection, "models") == models  # exact after ANALYZE
        size = dialect.table_bytes(connection, "models")
        assert size is None or size > 0
        assert dialect.table_bytes(connection, "no_such_table") in (None, 0)


def test_a_table_that_is_not_partitioned_lists_no_partitions(
    engine: Engine, dialect: Dialect
) -> None:
    with engine.connect() as connection:
        assert dialect.partitions(connection, "models") == []
        assert dialect.partitions(connection, "labels") == []


def test_dropping_partitions_removes_only_rows_older_than_the_cutoff(
    engine: Engine, dialect: Dialect
) -> None:
    """Whole days go where tables are partitioned; elsewhere nothing is dropped and every row is
    left to retention's ``DELETE``. Either way no row at or after the cutoff is lost, and what a
    drop reports is gone."""
    old = [r.model_copy(update={"timestamp": T0 - timedelta(days=3)}) for r in records(4)]
    new = records(5, prefix="n")
    cutoff = T0 - timedelta(days=1)
    with engine.begin() as connection:
        created = dialect.ensure_partitions(connection, (T0 - timedelta(days=3)).date(), 4)
        again = dialect.ensure_partitions(connection, (T0 - timedelta(days=3)).date(), 4)
        assert again == {table: [] for table in created}  # idempotent
        assert bool(created) is dialect.supports_partitions
        dialect.insert_records(connection, 1, old + new, T0)
    with engine.begin() as connection:
        listed = dialect.drop_partitions_before(connection, "records", cutoff, dry_run=True)
    with engine.begin() as connection:
        dropped = dialect.drop_partitions_before(connection, "records", cutoff)
        assert [(d.name, d.lower, d.upper) for d in dropped] == [
            (d.name, d.lower, d.upper) for d in listed
        ]
        left = {p.name for p in dialect.partitions(connection, "records")}
    rows = stored(engine)
    assert {key for key in rows if key[0].startswith("n")} == {
        (r.request_id, r.variant.value) for r in new
    }
    assert all(d.upper <= cutoff and d.name not in left for d in dropped)
    if dialect.supports_partitions:
        assert sum(d.rows for d in dropped) == len(old)
        assert not any(key[0].startswith("r") for key in rows)
    else:
        assert dropped == []
        assert len(rows) == len(old) + len(new)


def test_ensured_partitions_cover_each_day_without_overlap_oldest_first(
    engine: Engine, dialect: Dialect
) -> None:
    start = (T0 - timedelta(days=2)).date()
    with engine.begin() as connection:
        dialect.ensure_partitions(connection, start, 3)
        listed = dialect.partitions(connection, "records")
    if not dialect.supports_partitions:
        assert listed == []
        return
    days = [p for p in listed if not p.is_default]
    assert [p.is_default for p in listed] == [False] * len(days) + [True]
    assert [p.lower for p in days] == sorted(p.lower for p in days)
    assert all(
        a.upper is not None and b.lower is not None and a.upper <= b.lower
        for a, b in pairwise(days)
    )  # no overlap
    first = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    covered = {first + timedelta(days=i) for i in range(4)}
    assert covered <= {p.lower for p in days}


def test_before_drop_sees_each_partition_whole_and_a_failure_keeps_it(
    engine: Engine, dialect: Dialect
) -> None:
    """The archive's hook: called once per partition about to go, with its rows still readable;
    raising keeps that partition (and every later one) in place."""
    old = [
        r.model_copy(update={"timestamp": T0 - timedelta(days=3 - i % 2)})
        for i, r in enumerate(records(6))
    ]
    with engine.begin() as connection:
        dialect.ensure_partitions(connection, (T0 - timedelta(days=3)).date(), 4)
        dialect.insert_records(connection, 1, old, T0)
    seen: list[tuple[str, int]] = []

    def refuse(connection: Any, table: str, name: str, lower: datetime, upper: datetime) -> None:
        seen.append((name, int(connection.scalar(text(f"SELECT count(*) FROM {name}")))))
        raise RuntimeError("archive unavailable")

    cutoff = T0 - timedelta(days=1)
    failing: AbstractContextManager[Any] = (
        pytest.raises(RuntimeError, match="archive unavailable")
        if dialect.supports_partitions
        else nullcontext()
    )
    with failing, engine.begin() as connection:
        dialect.drop_partitions_before(connection, "records", cutoff, before_drop=refuse)
    assert len(stored(engine)) == len(old)  # nothing went
    if dialect.supports_partitions:
        assert [rows for _, rows in seen] == [3]  # the first day, whole; stopped there
    else:
        assert seen == []

    def keep(connection: Any, table: str, name: str, lower: datetime, upper: datetime) -> None:
        seen.append((name, int(connection.scalar(text(f"SELECT count(*) FROM {name}")))))

    seen.clear()
    with engine.begin() as connection:
        dropped = dialect.drop_partitions_before(connection, "records", cutoff, before_drop=keep)
    assert seen == [(d.name, d.rows) for d in dropped]
    assert sum(rows for _, rows in seen) == (len(old) if dialect.supports_partitions else 0)
