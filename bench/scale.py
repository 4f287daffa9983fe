"""Records at scale: 10M records over 30 days in PostgreSQL, day partitions against one table.

Two scratch PostgreSQL databases in one run, loaded with the same rows:

- **A, partitioned**: migrated to head (migration 0011: ``records``, ``drift_profiles`` and
  ``drift_ood_records`` partitioned by day; ``labels`` stays one table);
- **B, unpartitioned**: migrated to 0010, today's layout (the peer).

Rows are generated once in this process and written with ``COPY`` into both databases at once
(two connections, one writer thread each), not over HTTP: ``--records`` records (default 10M)
spread evenly over ``--days`` whole UTC days (default 30) up to now, three models
(60/30/10 % of the traffic), a champion, a challenger and a shadow version, 10 input features
(7 numbers, 3 categories) and a class with its scores each; ``--records / 10`` labels on the
busiest model's records of the last 7 days; per-minute (last 50 hours), hourly and daily drift
profiles of every version and variant, as retention keeps them; 0.2 % of the records flagged
out of distribution. The keys and indexes of ``records`` and ``labels`` are dropped during the
``COPY`` and rebuilt afterwards with the same definitions (a bulk load, not the layout, is what
that changes); then ``ANALYZE``. Autovacuum is off on the loaded tables during the run, so it
does not run during a measurement of one database and not the other.

Timed on each database, interleaved (A, B, B, A, ...), in the same run:

- **ingest** (target >= 20,000 records/s): what ``POST /v1/records`` does after HTTP, in process
  (``validate_batch_json`` then :func:`driftloop.monitor.ingest.ingest_batch` with the monitor's
  own state from ``create_app``: the write path of ``monitor/writer.py`` plus the drift profile
  hook), batches of 500 records (the sidecar's batch) of the busiest model, new request ids,
  time stamped now; median of the rounds;
- **label join** (target < 5 s): :func:`driftloop.feedback.join.labeled_rows` of the busiest
  model over the last 7 days (the leader's longest default performance window), which joins all
  the labels; median of the runs, and the monitor's CPU time (the server's runs in the ADBC
  driver's own connection and is not counted);
- **window drift from profiles** (target < 50 ms): the drift job's own
  ``Evaluator.evaluate_model`` for the busiest model (reference lookup, the window and the one
  before it summed from stored profiles, drift against both, quality; its result rows rolled
  back), for the default 60-minute window, one day and 30 days; median of the runs;
- **drop one day** (target < 1 s): the oldest day (a whole one) of ``records``,
  ``drift_profiles`` and ``drift_ood_records``: ``drop_partitions_before`` (DETACH + DROP) on A,
  a ``DELETE`` of the day's rows on B, each table its own transaction.

Every statement runs under a ``statement_timeout`` (``--statement-timeout`` for measurements, a
longer one for the load); the scratch databases (``driftloop_scale_{a,b}_<hex>``) are dropped at
exit, also on Ctrl-C or SIGTERM (they are made from the server's ``postgres`` database, never
the tests' ``test`` one). BLAS/OpenMP pools are limited to one thread. The machine's load
average is printed before and after: the machine is shared, read the ratios.

How long: loading 10M records into both databases takes most of the run (8 minutes on 2 cores
at a load average of 10-15: generating and ``COPY`` 5.5 minutes, keys 2.5); the measurements
take about 5 more. ``--records`` scales the load linearly (1M: about 3 minutes in all).

    .venv/bin/python bench/scale.py [--records 10_000_000] [--days 30] [--json]
    .venv/bin/python bench/scale.py --quick          # 200,000 records: a smoke run
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _scale_data import (  # bench/_scale_data.py: the script's folder is sys.path[0]
    ADMIN,
    BATCH,
    BUSIEST,
    JOIN_DAYS,
    POOL,
    Plan,
    Scratch,
    _terminate,
    load,
    load_average,
    log,
    make_documents,
    prepare,
    table_sizes,
)

from driftloop.contract import validate_batch_json
from driftloop.store.registry import get_model

WINDOWS = {"60 min (default)": 60, "1 day": 1440, "30 days": 30 * 1440}
TARGETS = {"ingest": 20_000.0, "join": 5.0, "window": 0.050, "drop": 1.0}


# --- Measurements ------------------------------------------------------------------------------


def backend_cpu(database: str) -> float:
    """CPU seconds used so far by the server processes connected to ``database`` (the server
    runs on this machine: ``/proc``)."""
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        pids = [
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        ]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not on this machine
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def interleaved(rounds: int, run: Callable[[str, int], float]) -> dict[str, list[float]]:
    """``run(db, round)`` for both databases each round, A first on even rounds, B on odd."""
    out: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(rounds):
        for db in ("A", "B") if r % 2 == 0 else ("B", "A"):
            out[db].append(run(db, r))
    return out


def ingest_bodies(plan: Plan, count: int, tag: str) -> list[bytes]:
    """Batches of :data:`BATCH` new records of the busiest model, time stamped in the last
    minutes, as a sidecar sends them (JSON, before gzip)."""
    now = datetime.now(UTC)
    inputs = [json.loads(d) for d in plan.inputs[BUSIEST]]
    outputs = [json.loads(d) for d in plan.outputs[BUSIEST]]
    bodies = []
    for first in range(0, count, BATCH):
        records = [
            {
                "request_id": f"{tag}{uuid.uuid4().hex[len(tag) :]}",
                "model": BUSIEST,
                "version": "v1",
                "variant": "champion",
                "timestamp": (now - timedelta(milliseconds=3 * (count - i))).isoformat(),
                "inputs": inputs[i % POOL],
                "outputs": outputs[i % POOL],
                "latency_ms": 3.5,
                "status": 200,
            }
            for i in range(first, min(count, first + BATCH))
        ]
        bodies.append(json.dumps({"batch_id": uuid.uuid4().hex, "records": records}).encode())
    return bodies


def measure(scratch: Scratch, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Every timed operation on both databases."""
    from driftloop.monitor.drift.decision import DriftConfig
    from driftloop.monitor.evaluation.job import Evaluator, window_bounds
    from driftloop.monitor.ingest import ingest_batch
    from driftloop.monitor.profiles import BaselineCache, profile_drift, read_window
    from driftloop.server import create_app
    from driftloop.settings import DriftSettings, Settings

    apps = {db: create_app(Settings(database_url=scratch.url(db))) for db in "AB"}
    states = {db: app.state.driftloop for db, app in apps.items()}
    # As `driftloop monitor` does after start-up (docs/benchmarks.md, ingest).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    results: dict[str, Any] = {}

    # Ingest: warm each monitor with one batch, then rounds of new records.
    for db in "AB":
        ingest_batch(states[db], validate_batch_json(ingest_bodies(plan, BATCH, "w" + db)[0]))
    rounds = [ingest_bodies(plan, args.ingest_records, f"r{r}") for r in range(args.ingest_rounds)]

    cpu: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}

    def ingest(db: str, r: int) -> float:
        backends = backend_cpu(scratch.names[db])
        began, own = time.perf_counter(), time.process_time()
        stored = sum(
            result.stored
            for result in senders.map(
                lambda body: ingest_batch(states[db], validate_batch_json(body)), rounds[r]
            )
        )
        elapsed = time.perf_counter() - began
        monitor = time.process_time() - own
        server = backend_cpu(scratch.names[db]) - backends
        cpu[db].append((1e6 * monitor / stored, 1e6 * server / stored))
        if stored != args.ingest_records:
            raise RuntimeError(f"{db}: stored {stored} of {args.ingest_records} records")
        return args.ingest_records / elapsed

    log("ingest")
    with ThreadPoolExecutor(args.senders, thread_name_prefix="sender") as senders:
        results["ingest"] = interleaved(args.ingest_rounds, ingest)
    results["ingest_cpu_us_per_record"] = cpu

    # The label join over the leader's longest performance window.
    from driftloop.feedback import labeled_rows

    now = datetime.now(UTC)
    joined: dict[str, int] = {}
    join_cpu: dict[str, list[float]] = {"A": [], "B": []}

    def join(db: str, _r: int) -> float:
        with states[db].sessions() as session:
            model = get_model(session, BUSIEST)
            began, own = time.perf_counter(), time.process_time()
            frame = labeled_rows(session, model, since=now - timedelta(days=JOIN_DAYS), until=now)
            elapsed = time.perf_counter() - began
            # The monitor's CPU (all its threads); the server's runs in the driver's own
            # connection, closed by the time this could read it from /proc.
            join_cpu[db].append(time.process_time() - own)
        joined[db] = len(frame)
        return elapsed

    log("label join")
    results["join"] = interleaved(args.join_runs, join)
    results["join_rows"] = joined
    results["join_monitor_cpu_s"] = join_cpu
    if joined["A"] != joined["B"]:
        raise RuntimeError(f"the joins differ: {joined}")

    # A window's drift from stored profiles: the window summed by read_window and compared with
    # the reference by profile_drift (what the job does per version and variant), then the drift
    # job's whole evaluation of one model.
    evaluators = {db: Evaluator(BaselineCache()) for db in "AB"}
    drift: dict[str, Any] = {}
    for label, minutes in WINDOWS.items():
        start, end = window_bounds(datetime.now(UTC), minutes)
        summed: dict[str, int] = {}

        def one_window(
            db: str, _r: int, start: datetime = start, end: datetime = end, summed=summed
        ) -> float:
            with states[db].sessions() as session:
                model = get_model(session, BUSIEST)
                baseline = evaluators[db].baselines.get(session, model, "v1")
                if baseline is None:
                    raise RuntimeError(f"{db}: no baseline")
                layout = baseline.layout
                began = time.perf_counter()
                window = read_window(session, model.id, layout.fingerprint, layout.size, start, end)
                vector = window[("v1", "champion")]
                profile_drift(layout, vector, DriftConfig(), overrides=baseline.overrides)
                elapsed = time.perf_counter() - began
            summed[db] = int(vector[0])
            return elapsed

        for db in "AB":  # builds each baseline once (a cached, per-process cost)
            one_window(db, 0)
        log(f"window drift, {label}")
        drift[label] = interleaved(args.drift_runs, one_window)
        drift[label + " records"] = summed

    jobs: dict[str, Any] = {}
    for label, minutes in WINDOWS.items():
        settings = DriftSettings(window_minutes=minutes)
        counted: dict[str, int] = {}

        def window(
            db: str, _r: int, settings: DriftSettings = settings, counted: dict[str, int] = counted
        ) -> float:
            with states[db].sessions() as session:
                model = get_model(session, BUSIEST)
                at = datetime.now(UTC)
                began = time.perf_counter()
                rows = evaluators[db].evaluate_model(session, model, settings, at)
                elapsed = time.perf_counter() - began
                counted[db] = sum(row.records for row in rows)
                session.rollback()
            return elapsed

        log(f"drift job, {label}")
        jobs[label] = interleaved(args.drift_runs, window)
        jobs[label + " records"] = counted
    results["window"] = drift
    results["job"] = jobs

    # Drop the oldest whole day.
    from driftloop.store.partitions import PARTITIONED, drop_partitions_before

    day = plan.start
    cutoff = day + timedelta(days=1)
    drop: dict[str, Any] = {}
    for db in "AB":
        engine = states[db].engine
        per_table: dict[str, Any] = {}
        for table, key in PARTITIONED.items():
            with engine.connect() as connection:
                rows = connection.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {key} >= :a AND {key} < :b"),
                    {"a": day, "b": cutoff},
                )
            began = time.perf_counter()
            try:
                with engine.begin() as connection:
                    dropped = drop_partitions_before(connection, table, cutoff)
                    how = f"DETACH + DROP {', '.join(p.name for p in dropped)}"
                    if not dropped:
                        connection.execute(
                            text(f"DELETE FROM {table} WHERE {key} >= :a AND {key} < :b"),
                            {"a": day, "b": cutoff},
                        )
                        how = "DELETE"
            except OperationalError as exc:  # the statement timeout: a figure, not a crash
                how = f"failed after the statement timeout or a lock: {exc.orig}"
            per_table[table] = {
                "seconds": time.perf_counter() - began,
                "rows": int(rows or 0),
                "how": how,
            }
        drop[db] = per_table
    results["drop"] = drop
    for app in apps.values():
        app.state.driftloop.http.close()
        app.state.driftloop.engine.dispose()
    return results


# --- Report ------------------------------------------------------------------------------------


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Medians, ratios (how many times faster A is than B) and the targets, per operation."""
    ingest = {db: statistics.median(results["ingest"][db]) for db in "AB"}
    join = {db: statistics.median(results["join"][db]) for db in "AB"}
    cpu = results["ingest_cpu_us_per_record"]
    monitor_us = {db: statistics.median(m for m, _ in cpu[db]) for db in "AB"}
    server_us = {db: statistics.median(p for _, p in cpu[db]) for db in "AB"}
    rows: dict[str, Any] = {
        "ingest_records_per_s": {
            **ingest,
            "A_best": max(results["ingest"]["A"]),
            "B_best": max(results["ingest"]["B"]),
            "monitor_cpu_us_per_record": monitor_us,
            "postgres_cpu_us_per_record": server_us,
            # With several batches in flight the monitor and PostgreSQL work at once, each on its
            # core: on two idle cores the busier of the two bounds the rate (an estimate).
            "cpu_bound_records_per_s": {
                db: 1e6 / max(monitor_us[db], server_us[db]) for db in "AB"
            },
            "speedup": ingest["A"] / ingest["B"],
            "target": f">= {TARGETS['ingest']:,.0f}",
            "A_met": ingest["A"] >= TARGETS["ingest"],
            "B_met": ingest["B"] >= TARGETS["ingest"],
        },
        "label_join_s": {
            **join,
            "rows": results["join_rows"]["A"],
            "monitor_cpu_s": {
                db: statistics.median(results["join_monitor_cpu_s"][db]) for db in "AB"
            },
            "speedup": join["B"] / join["A"],
            "target": f"< {TARGETS['join']}",
            "A_met": join["A"] < TARGETS["join"],
            "B_met": join["B"] < TARGETS["join"],
        },
    }
    for kind, name in (("window", "window_drift_s"), ("job", "drift_job_s")):
        for label in WINDOWS:
            times = {db: statistics.median(results[kind][label][db]) for db in "AB"}
            rows[f"{name} {label}"] = {
                **times,
                "records": results[kind][label + " records"]["A"],
                "speedup": times["B"] / times["A"],
                "target": f"< {TARGETS['window']}" if kind == "window" else "(none)",
                "A_met": times["A"] < TARGETS["window"],
                "B_met": times["B"] < TARGETS["window"],
                "counts": kind == "window",
            }
    for table in results["drop"]["A"]:
        times = {db: results["drop"][db][table]["seconds"] for db in "AB"}
        rows[f"drop_day_s {table}"] = {
            **times,
            "rows": results["drop"]["B"][table]["rows"],
            "A_how": results["drop"]["A"][table]["how"],
            "speedup": times["B"] / times["A"],
            "target": f"< {TARGETS['drop']}",
            "A_met": times["A"] < TARGETS["drop"],
            "B_met": times["B"] < TARGETS["drop"],
        }
    return rows


def print_report(report: dict[str, Any]) -> None:
    config, layout, rows = report["config"], report["layout"], report["summary"]
    print(
        f"{config['records']:,} records over {config['days']} days, {report['load']['labels']:,} "
        f"labels, {report['load']['profiles']:,} profile rows; load average "
        f"{report['load_average']['before']} before, {report['load_average']['after']} after"
    )
    print(
        f"A: revision {','.join(layout['A']['revision'])}, partitions {layout['A']['partitions']}"
        f"; B: revision {','.join(layout['B']['revision'])} (one table each)"
    )
    load = report["load"]
    a, b = load["per_database"]["A"], load["per_database"]["B"]
    print(
        f"load: {load['seconds']:.0f} s for both (COPY A {a['copy_s']:.0f} s / B "
        f"{b['copy_s']:.0f} s, keys A {a['keys_s']:.0f} s / B {b['keys_s']:.0f} s); records "
        f"{report['sizes']['A']['bytes'] / 2**30:.2f} GiB (A), "
        f"{report['sizes']['B']['bytes'] / 2**30:.2f} GiB (B)"
    )
    print()
    header = (
        f"{'operation':<34}{'A partitioned':>15}{'B one table':>14}{'A vs B':>9}"
        f"{'target':>12}{'A':>6}{'B':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        rate = name.startswith("ingest")
        a = f"{r['A']:,.0f}/s" if rate else _seconds(r["A"])
        b = f"{r['B']:,.0f}/s" if rate else _seconds(r["B"])
        if r.get("counts", True):
            verdicts = f"{'pass' if r['A_met'] else 'FAIL':>6}{'pass' if r['B_met'] else 'FAIL':>6}"
        else:  # shown for scale, not held to the window's target
            verdicts = f"{'-':>6}{'-':>6}"
        print(f"{name:<34}{a:>15}{b:>14}{r['speedup']:>8.2f}x{r['target']:>12}{verdicts}")
    print("A vs B: how many times faster the partitioned layout is (below 1: slower).")
    ingest = rows["ingest_records_per_s"]
    print(
        f"ingest rounds (rec/s): A {[round(v) for v in report['raw']['ingest']['A']]}, "
        f"B {[round(v) for v in report['raw']['ingest']['B']]}"
    )
    print(f"ingest best: A {ingest['A_best']:,.0f}/s, B {ingest['B_best']:,.0f}/s")
    join, runs = rows["label_join_s"], report["raw"]["join"]
    print(
        f"label join: {join['rows']:,} rows; runs A {[round(v, 2) for v in runs['A']]} s, "
        f"B {[round(v, 2) for v in runs['B']]} s; monitor CPU (median) "
        f"A {join['monitor_cpu_s']['A']:.2f} s, B {join['monitor_cpu_s']['B']:.2f} s"
    )
    m, p, c = (
        ingest["monitor_cpu_us_per_record"],
        ingest["postgres_cpu_us_per_record"],
        ingest["cpu_bound_records_per_s"],
    )
    print(
        f"ingest CPU per record: monitor A {m['A']:.1f} / B {m['B']:.1f} us, PostgreSQL "
        f"A {p['A']:.1f} / B {p['B']:.1f} us; estimate on two idle cores (the busier of "
        f"the two): A {c['A']:,.0f}/s, B {c['B']:,.0f}/s"
    )
    print(
        "window_drift_s: read_window + profile_drift of v1/champion (the target); drift_job_s: "
        "Evaluator.evaluate_model, both versions, against the reference and the previous window"
    )
    for table, how in ((t, rows[f"drop_day_s {t}"]["A_how"]) for t in report["raw"]["drop"]["A"]):
        print(f"drop {table}: A {how}; B DELETE of {rows[f'drop_day_s {table}']['rows']:,} rows")
    verdict = "all targets met" if report["targets_met"] else "NOT all targets met"
    print(f"partitioned layout (A): {verdict}")


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=lambda v: int(v.replace("_", "")), default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--labels", type=int, help="default: records / 10")
    parser.add_argument("--ingest-records", type=int, default=70_000, help="per round")
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument(
        "--senders", type=int, default=4, help="batches ingested at once (the HTTP bench's senders)"
    )
    parser.add_argument("--join-runs", type=int, default=3)
    parser.add_argument("--drift-runs", type=int, default=15)
    parser.add_argument("--statement-timeout", type=float, default=120, help="seconds")
    parser.add_argument("--load-timeout", type=float, default=1200, help="seconds, per statement")
    parser.add_argument("--quick", action="store_true", help="200,000 records: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        if args.records == parser.get_default("records"):
            args.records = 200_000
        args.ingest_records, args.ingest_rounds = 5_000, 2
        args.join_runs, args.drift_runs = 1, 3
    if args.days < JOIN_DAYS or args.records < 20 * args.days:
        parser.error(f"--days must be at least {JOIN_DAYS} and --records at least 20 a day")
    labels = args.labels if args.labels is not None else args.records // 10
    end = datetime.now(UTC)
    start = datetime.combine(end.date() - timedelta(days=args.days), datetime.min.time(), UTC)
    plan = Plan(args.records, args.days, labels, start, end)
    report: dict[str, Any] = {
        "config": {
            "records": args.records,
            "days": args.days,
            "labels": labels,
            "ingest_records_per_round": args.ingest_records,
            "ingest_rounds": args.ingest_rounds,
            "batch": BATCH,
            "senders": args.senders,
            "join_days": JOIN_DAYS,
            "join_runs": args.join_runs,
            "drift_runs": args.drift_runs,
            "statement_timeout_s": args.statement_timeout,
            "cpus": os.cpu_count(),
            "started": end.isoformat(timespec="seconds"),
        },
        "load_average": {"before": load_average()},
    }
    signal.signal(signal.SIGTERM, _terminate)
    scratch = Scratch()
    report["databases"] = dict(scratch.names)
    began = time.perf_counter()
    try:
        with threadpool_limits(limits=1):
            scratch.create(args.statement_timeout)
            references = make_documents(plan)
            log(f"migrating {scratch.names['A']} to head, {scratch.names['B']} to 0010")
            report["layout"] = prepare(scratch, plan, references)
            log(f"loading {args.records:,} records into both with COPY")
            report["load"] = load(scratch, plan, args.load_timeout)
            report["sizes"] = table_sizes(scratch)
            report["load_average"]["measured_from"] = load_average()
            raw = measure(scratch, plan, args)
    finally:
        scratch.drop()
    report["raw"] = raw
    report["summary"] = summary(raw)
    report["targets_met"] = all(
        r["A_met"] for r in report["summary"].values() if r.get("counts", True)
    )
    report["load_average"]["after"] = load_average()
    report["seconds"] = time.perf_counter() - began
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
