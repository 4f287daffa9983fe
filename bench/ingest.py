"""Ingest throughput: records/s end to end over HTTP into SQLite and PostgreSQL.

For each database, one real ``driftloop monitor`` process receives gzip batches of 500 records
from concurrent senders on loopback; the peer, measured in the same run on the same rows, is a
plain DB-API ``executemany`` insert into an equivalent table (no HTTP, no validation, no dedupe).
Target (ARCHITECTURE §7): at least 20,000 records/s into PostgreSQL from one monitor process.
Each figure is the median of ``--rounds`` runs (new records each round, the same monitor
process), the best beside it: a shared two-core machine is noisy.

    .venv/bin/python bench/ingest.py [--records 100000] [--senders 4] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.procs import MonitorProcess

PG = "postgresql://postgres@127.0.0.1:5432"
BATCH = 500


def make_records(count: int) -> list[dict[str, Any]]:
    """``count`` records of one model: 9 inputs (8 numbers, a category), a class and scores."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "request_id": f"{uuid.uuid4().hex}",
            "model": "bench",
            "version": "v1",
            "variant": "champion",
            "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
            "inputs": {f"f{j}": (i * 7 + j) % 101 / 10 for j in range(8)} | {"city": f"c{i % 20}"},
            "outputs": {"prediction": i % 3, "probabilities": [0.2, 0.3, 0.5]},
            "latency_ms": 1.0 + i % 5,
            "status": 200,
        }
        for i in range(count)
    ]


def http_ingest(url: str, bodies: list[bytes], senders: int) -> float:
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=senders)) as client:

        def send(body: bytes) -> None:
            response = client.post(f"{url}/v1/records", content=body, headers=headers)
            response.raise_for_status()

        send(bodies[0])  # warm-up: registers the model
        start = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            list(pool.map(send, bodies[1:]))
        return time.perf_counter() - start


ROW_SQL = (
    "INSERT INTO plain (request_id, variant, ts, inputs, outputs, latency_ms, status) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)


def plain_rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["request_id"],
            r["variant"],
            r["timestamp"],
            json.dumps(r["inputs"]),
            json.dumps(r["outputs"]),
            r["latency_ms"],
            r["status"],
        )
        for r in records
    ]


def plain_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS plain (id INTEGER PRIMARY KEY, request_id TEXT, variant TEXT,"
        " ts TEXT, inputs TEXT, outputs TEXT, latency_ms REAL, status INTEGER)"
    )
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        db.executemany(ROW_SQL.format(p="?"), rows[i : i + BATCH])
        db.commit()
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


def plain_postgres(dbname: str, rows: list[tuple[Any, ...]]) -> float:
    with psycopg.connect(f"{PG}/{dbname}") as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS plain (id BIGSERIAL PRIMARY KEY, request_id TEXT, "
            "variant TEXT, ts TIMESTAMPTZ, inputs JSON, outputs JSON, "
            "latency_ms DOUBLE PRECISION, status INTEGER)"
        )
        db.commit()
        start = time.perf_counter()
        with db.cursor() as cursor:
            for i in range(0, len(rows), BATCH):
                cursor.executemany(ROW_SQL.format(p="%s"), rows[i : i + BATCH])
                db.commit()
        return time.perf_counter() - start


def bodies_of(records: list[dict[str, Any]]) -> list[bytes]:
    """Gzip batches of :data:`BATCH` records, as a sidecar sends them."""
    return [
        gzip.compress(
            json.dumps({"batch_id": uuid.uuid4().hex, "records": records[i : i + BATCH]}).encode()
        )
        for i in range(0, len(records), BATCH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rounds = [make_records(args.records + BATCH) for _ in range(args.rounds)]
    bodies = [bodies_of(records) for records in rounds]  # the first batch of each: warm-up
    rows = [plain_rows(records[BATCH:]) for records in rounds]
    work = Path(tempfile.mkdtemp(prefix="driftloop-bench-"))
    dbname = f"driftloop_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/test", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    results: dict[str, dict[str, Any]] = {}
    try:
        targets = {
            "sqlite": f"sqlite:///{work / 'bench.db'}",
            "postgresql": f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}",
        }
        for name, url in targets.items():
            with MonitorProcess(url, work) as monitor:
                ours = [args.records / http_ingest(monitor.url, b, args.senders) for b in bodies]
            plain = [
                args.records
                / (
                    plain_sqlite(work / "plain.db", r)
                    if name == "sqlite"
                    else plain_postgres(dbname, r)
                )
                for r in rows
            ]
            results[name] = {
                "driftloop_records_per_s": statistics.median(ours),
                "driftloop_best": max(ours),
                "driftloop_rounds": ours,
                "executemany_rows_per_s": statistics.median(plain),
                "executemany_rounds": plain,
                "ratio": statistics.median(ours) / statistics.median(plain),
            }
    finally:
        with psycopg.connect(f"{PG}/test", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{args.records} records in batches of {BATCH}, gzip, {args.senders} senders, "
        f"median of {args.rounds} rounds (best)"
    )
    print(f"{'database':<12}{'driftloop rec/s':>26}{'executemany rows/s':>22}{'ratio':>8}")
    for name, r in results.items():
        ours = f"{r['driftloop_records_per_s']:,.0f} ({r['driftloop_best']:,.0f})"
        print(f"{name:<12}{ours:>26}{r['executemany_rows_per_s']:>22,.0f}{r['ratio']:>8.2f}")
    pg = results["postgresql"]["driftloop_records_per_s"]
    print(
        "target >= 20,000 records/s into PostgreSQL (median): "
        f"{'met' if pg >= 20_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
