"""Retention: how long ingest waits while old records are deleted, batched prune vs one DELETE.

One process, one run, per database: ``--rows`` old records (40 days old) are written into a fresh
database, then deleted twice while a thread keeps ingesting 100-record batches (each batch its
own transaction, the way ``POST /v1/records`` commits) and times every batch:

- the peer: one ``DELETE FROM records WHERE ts < cutoff`` in one transaction (what a cron job or
  a hand-written cleanup does);
- Driftloop: :func:`driftloop.store.retention.prune` (5,000 rows per committed transaction).

Printed per method: the delete's wall time, the ingest batches committed meanwhile, their
median and worst latency and when (seconds after the delete began) the worst one started; then
the ratio of worst ingest stalls (peer / Driftloop). The ingest thread writes with plain
``INSERT`` statements, not through the HTTP API: it stands for any writer. It shares the process
(and the GIL) with the prune, so part of a stall can be the prune's Python work rather than a
database lock. The machine is shared with other sessions: figures are upper bounds and noisy.

Run: ``.venv/bin/python bench/retention.py [--rows 200000] [--database sqlite|postgresql|both]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, text

from driftloop.store import make_engine, upgrade
from driftloop.store.retention import RetentionPolicy, prune

PG_ADMIN = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)
INSERT = text(
    "INSERT INTO records (model_id, version, variant, request_id, ts, inputs, outputs, "
    "latency_ms, status, received_at) VALUES (1, 'v1', 'champion', :rid, :ts, :doc, :doc, "
    "1.0, 200, :ts)"
)
DOC = '{"size": 1.5, "color": "red", "note": "a typical record of a few features"}'


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A fresh, migrated database URL, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"driftloop_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(engine: Engine, rows: int, tag: str) -> None:
    """``rows`` records 40 days old, written 10,000 per transaction."""
    for start in range(0, rows, 10_000):
        with engine.begin() as connection:
            connection.execute(
                INSERT,
                [
                    {"rid": f"{tag}-{i}", "ts": OLD, "doc": DOC}
                    for i in range(start, min(rows, start + 10_000))
                ],
            )


def during(engine: Engine, delete: Callable[[], None], tag: str) -> dict[str, float]:
    """Run ``delete`` while a thread ingests 100-record batches; time both."""
    stop = threading.Event()
    latencies: list[float] = []
    starts: list[float] = []

    def ingest() -> None:
        n = 0
        while not stop.is_set():
            batch = [{"rid": f"{tag}-live-{n}-{i}", "ts": NOW, "doc": DOC} for i in range(100)]
            n += 1
            began = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(INSERT, batch)
            latencies.append(time.perf_counter() - began)
            starts.append(began)

    sender = threading.Thread(target=ingest)
    sender.start()
    time.sleep(0.5)  # the writer is warm before the delete starts (not a correctness wait)
    seen = len(latencies)
    began = time.perf_counter()
    delete()
    seconds = time.perf_counter() - began
    stop.set()
    sender.join()
    window = latencies[seen:] or [float("nan")]
    worst = max(range(seen, len(latencies)), key=latencies.__getitem__, default=None)
    return {
        "worst_at_s": starts[worst] - began if worst is not None else float("nan"),
        "delete_s": seconds,
        "batches": len(window),
        "median_ms": 1000 * statistics.median(window),
        "worst_ms": 1000 * max(window),
    }


def run(kind: str, rows: int) -> None:
    with scratch_database(kind) as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO models (id, name, schema, schema_source, created_at, updated_at) "
                    "VALUES (1, 'bench', '{}', 'inferred', :t, :t)"
                ),
                {"t": NOW},
            )
        cutoff = NOW - timedelta(days=30)

        def single() -> None:
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM records WHERE ts < :c"), {"c": cutoff})

        days = timedelta(days=30)
        pause = 0.2 if kind == "sqlite" else 0.0  # the defaults of retention_policy(settings)
        policy = RetentionPolicy(
            records=days,
            pending_labels=days,
            profiles=days,
            ood_records=days,
            pause_seconds=pause,
        )

        def batched() -> None:
            report = prune(engine, policy, NOW)
            assert report.rows()["records"] == rows, report.rows()

        results = {}
        for name, delete in (("one DELETE (peer)", single), ("driftloop prune", batched)):
            fill(engine, rows, name.split()[0])
            results[name] = during(engine, delete, name.split()[0])
        engine.dispose()
    print(f"\n{kind}: {rows:,} old records deleted while ingest runs (shared, loaded machine)")
    print(
        f"{'method':<20} {'delete s':>9} {'ingest batches':>15} {'median ms':>10} "
        f"{'worst ms':>9} {'worst at s':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:<20} {r['delete_s']:>9.2f} {r['batches']:>15.0f} "
            f"{r['median_ms']:>10.1f} {r['worst_ms']:>9.1f} {r['worst_at_s']:>10.2f}"
        )
    peer, ours = results["one DELETE (peer)"], results["driftloop prune"]
    print(f"worst ingest stall: peer / driftloop = {peer['worst_ms'] / ours['worst_ms']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for kind in kinds:
        run(kind, args.rows)


if __name__ == "__main__":
    main()
