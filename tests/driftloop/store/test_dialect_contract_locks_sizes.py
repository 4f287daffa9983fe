"""The dialect contract for coordination and storage: row claims, the leader lock, table sizes
and day partitions behave alike on SQLite and PostgreSQL, or as each capability flag says
(see ``test_dialect_contract.py``)."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from driftloop.store import LabelRow, Model, make_engine, make_sessionmaker
from driftloop.store.dialect import Dialect, dialect_of
from driftloop.store.dialect.postgresql import LEADER_KEEPALIVES
from tests.driftloop.store.support import LABELS, T0, label_rows, records, stored

LEADER_KEY = 0x44524946544C4F4F


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


def test_the_leader_session_gives_up_on_a_silent_peer_in_seconds(pg_database_url: str) -> None:
    """The server's keepalives on the leader's session are the lock's own, not the operating
    system's two hours: a leader that vanishes without closing its connection (power lost)
    frees the lock about 25 s later. What is checked here is the session's settings, over TCP
    as in production; the silent peer itself needs packet loss on loopback, which would cut
    every other test of a parallel run off too, so it is not simulated."""
    engine = make_engine(pg_database_url)
    assert engine.url.host == "127.0.0.1", "keepalives apply to TCP sessions only"
    lock = dialect_of(engine).leader_lock(engine, LEADER_KEY)
    try:
        assert lock.acquire()
        held = lock._connection  # type: ignore[attr-defined]  # the lock's own session
        assert held is not None
        shown = {name: held.execute(text(f"SHOW {name}")).scalar() for name in LEADER_KEEPALIVES}
        assert shown == LEADER_KEEPALIVES
        idle, interval, count = (int(v) for v in LEADER_KEEPALIVES.values())
        assert idle + interval * count <= 60, "a silent leader is replaced within a minute"
    finally:
        lock.release()
        engine.dispose()


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
