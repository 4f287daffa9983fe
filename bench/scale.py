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
import queue
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driftloop.contract import ModelRegistration, Role, validate_batch_json
from driftloop.store import make_engine, make_sessionmaker, upgrade
from driftloop.store.migrate import current_revisions
from driftloop.store.reference import save_reference
from driftloop.store.registry import get_model, register, set_version

PG = os.environ.get("DRIFTLOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVER = PG.rsplit("/", 1)[0]  # postgresql+psycopg://user@host:port
LIBPQ = SERVER.replace("postgresql+psycopg://", "postgresql://")
ADMIN = f"{LIBPQ}/postgres"  # maintenance connection: never the tests' database
BASELINE_REVISION = "0010"
BATCH = 500  # the sidecar's batch_records
CHUNK = 100_000  # rows per generated COPY chunk
POOL = 4096  # distinct input documents per model
JOIN_DAYS = 7  # the leader's longest default performance window (feedback.windows_seconds)
WINDOWS = {"60 min (default)": 60, "1 day": 1440, "30 days": 30 * 1440}
TARGETS = {"ingest": 20_000.0, "join": 5.0, "window": 0.050, "drop": 1.0}
RECORD_COLUMNS = (
    "model_id, version, variant, request_id, ts, inputs, outputs, latency_ms, status, received_at"
)
LABEL_COLUMNS = "model_id, request_id, label, label_ts, received_at, updated_at, corrections"
PROFILE_COLUMNS = "model_id, layout, version, variant, grain, start, records, data, updated_at"
OOD_COLUMNS = "model_id, version, variant, request_id, ts, features"
NUMBERS = ("amount", "age", "score", "items", "distance", "tenure_days", "hour")
CATEGORIES = {
    "city": [f"city_{i:02d}" for i in range(20)],
    "plan": ["free", "pro", "team", "enterprise"],
    "device": ["ios", "android", "web"],
}


def log(message: str) -> None:
    """Progress on stderr (stdout is the report, or the JSON with ``--json``)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- The data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """One model, version and variant: which slots of every 20 consecutive rows it takes."""

    model: str
    version: str
    variant: str
    slots: tuple[int, ...]
    after: float = 0.0  # share of the time range before it starts (a challenger's start)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the generated traffic."""

    name: str
    classes: tuple[str, ...]
    shift: float  # moves every number: each model has its own distributions


MODELS = (
    ModelSpec("fraud", ("legit", "fraud"), 0.0),
    ModelSpec("churn", ("stay", "leave"), 1.0),
    ModelSpec("eta", ("short", "medium", "long"), 2.0),
)
BUSIEST = "fraud"
STREAMS = (
    # fraud: 60 % of the rows; from two thirds of the range on, v2 takes one of its twelve slots
    Stream("fraud", "v1", "champion", tuple(range(11))),
    Stream("fraud", "v1", "champion", (11,)),  # before v2 started
    Stream("fraud", "v2", "challenger", (11,), after=2 / 3),
    # churn: 30 %, with a shadow copy of the next version on one slot
    Stream("churn", "v7", "champion", (12, 13, 14, 15, 16)),
    Stream("churn", "v8", "shadow", (17,)),
    # eta: 10 %
    Stream("eta", "v3", "champion", (18, 19)),
)


def feature_frame(rng: np.random.Generator, rows: int, spec: ModelSpec) -> pd.DataFrame:
    """``rows`` inputs of ``spec``'s model (its reference has the same distributions)."""
    data: dict[str, Any] = {}
    for j, name in enumerate(NUMBERS):
        data[name] = np.round(rng.normal(10 * (j + 1) + spec.shift, 1 + j, rows), 3)
    data["items"] = rng.poisson(3 + spec.shift, rows).astype(float)
    for name, values in CATEGORIES.items():
        weights = np.linspace(1, 2, len(values))
        data[name] = np.asarray(values)[rng.choice(len(values), rows, p=weights / weights.sum())]
    return pd.DataFrame(data)


def request_id(i: int) -> str:
    """Row ``i``'s request id: 32 hex digits whose first half looks random (as a UUID's does,
    so that the unique index is written at random places)."""
    return f"{(i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF:016x}{i:016x}"


@dataclass
class Plan:
    """What to generate: sizes, the time range, model ids and each model's documents."""

    records: int
    days: int
    labels: int
    start: datetime  # midnight UTC, ``days`` days before today
    end: datetime  # now
    model_ids: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    predictions: dict[str, list[str]] = field(default_factory=dict)

    def stream_of(self) -> list[tuple[Stream, Stream | None]]:
        """Per slot (0..19): the stream before and after its switch point (None: no switch)."""
        out: list[tuple[Stream, Stream | None]] = []
        for slot in range(20):
            owners = [s for s in STREAMS if slot in s.slots]
            first = next(s for s in owners if s.after == 0.0)
            later = next((s for s in owners if s.after > 0.0), None)
            out.append((first, later))
        return out

    def timestamps(self, first: int, count: int) -> np.ndarray[Any, Any]:
        """Prediction times of rows ``first .. first + count`` (even spacing over the range)."""
        step_us = (self.end - self.start).total_seconds() * 1e6 / self.records
        epoch = np.datetime64(self.start.replace(tzinfo=None), "us")
        offsets = (np.arange(first, first + count) * step_us).astype("timedelta64[us]")
        return epoch + offsets

    def chunks(self) -> Iterator[bytes]:
        """The records in ``COPY`` text format, :data:`CHUNK` rows at a time, oldest first."""
        slots = self.stream_of()
        switch = int(self.records * 2 / 3)
        received = f"{self.end.isoformat()}"
        prefix: dict[tuple[int, bool], str] = {}
        for slot, (first, later) in enumerate(slots):
            for late in (False, True):
                s = later if (late and later is not None) else first
                prefix[(slot, late)] = f"{self.model_ids[s.model]}\t{s.version}\t{s.variant}\t"
        names = [s[0].model for s in slots]
        for begin in range(0, self.records, CHUNK):
            count = min(CHUNK, self.records - begin)
            stamps = np.datetime_as_string(self.timestamps(begin, count), unit="us").tolist()
            lines = []
            for i, stamp in zip(range(begin, begin + count), stamps, strict=True):
                slot = i % 20
                model = names[slot]
                k = (i * 7919) % POOL
                lines.append(
                    f"{prefix[(slot, i >= switch)]}{request_id(i)}\t{stamp}Z\t"
                    f"{self.inputs[model][k]}\t{self.outputs[model][k]}\t{1 + i % 40}.5\t200\t"
                    f"{received}\n"
                )
            yield "".join(lines).encode()

    def label_rows(self) -> bytes:
        """Labels of the busiest model's records of the last :data:`JOIN_DAYS` days (less an
        hour: the join runs a little later and must find them all in its window)."""
        since = self.end - timedelta(days=JOIN_DAYS, hours=-1)
        first = max(0, int(self.records * ((since - self.start) / (self.end - self.start))) + 1)
        slots = {slot for s in STREAMS if s.model == BUSIEST for slot in s.slots}
        candidates = [i for i in range(first, self.records) if i % 20 in slots]
        count = min(self.labels, len(candidates))
        chosen = np.linspace(0, len(candidates) - 1, count).astype(np.int64)
        stamps = self.timestamps(0, self.records)
        model_id = self.model_ids[BUSIEST]
        lines = []
        for c in chosen:
            i = candidates[int(c)]
            k = (i * 7919) % POOL
            label = self.predictions[BUSIEST][k] if i % 7 else "fraud"  # mostly right
            at = f"{np.datetime_as_string(stamps[i] + np.timedelta64(3600, 's'), unit='us')}Z"
            lines.append(f'{model_id}\t{request_id(i)}\t"{label}"\t{at}\t{at}\t{at}\t0\n')
        return "".join(lines).encode()

    def ood_rows(self) -> bytes:
        """0.2 % of the records, flagged out of distribution on one feature."""
        slots = self.stream_of()
        switch = int(self.records * 2 / 3)
        step = 500
        stamps = self.timestamps(0, self.records)
        lines = []
        for i in range(7, self.records, step):
            first, later = slots[i % 20]
            s = later if (later is not None and i >= switch) else first
            stamp = np.datetime_as_string(stamps[i], unit="us")
            lines.append(
                f"{self.model_ids[s.model]}\t{s.version}\t{s.variant}\t{request_id(i)}\t"
                f'{stamp}Z\t{{"names": ["amount"]}}\n'
            )
        return "".join(lines).encode()


def make_documents(plan: Plan) -> dict[str, pd.DataFrame]:
    """Each model's pool of input and output documents; returns each model's reference frame."""
    rng = np.random.default_rng(19)
    references = {}
    for spec in MODELS:
        frame = feature_frame(rng, POOL, spec)
        predictions = [spec.classes[int(v)] for v in rng.integers(len(spec.classes), size=POOL)]
        plan.inputs[spec.name] = [
            json.dumps(row, separators=(",", ":")) for row in frame.to_dict("records")
        ]
        plan.predictions[spec.name] = predictions
        plan.outputs[spec.name] = []
        for p in predictions:
            share = round(0.55 + 0.4 * rng.random(), 3)
            rest = round((1 - share) / (len(spec.classes) - 1), 3)
            scores = {c: (share if c == p else rest) for c in spec.classes}
            plan.outputs[spec.name].append(
                json.dumps({"prediction": p, "probabilities": scores}, separators=(",", ":"))
            )
        reference = feature_frame(rng, 5000, spec)
        reference["prediction"] = [
            spec.classes[int(v)] for v in rng.integers(len(spec.classes), size=5000)
        ]
        references[spec.name] = reference
    return references


def schema_of(spec: ModelSpec) -> dict[str, Any]:
    """The registered schema of ``spec``'s model."""
    return {
        "features": [{"name": n, "kind": "numerical"} for n in NUMBERS]
        + [{"name": n, "kind": "categorical"} for n in CATEGORIES],
        "prediction": {"kind": "classification", "classes": list(spec.classes)},
    }


# --- Scratch databases -------------------------------------------------------------------------


class Scratch:
    """The two scratch databases, dropped at exit (also on SIGTERM and Ctrl-C)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.names = {"A": f"driftloop_scale_a_{tag}", "B": f"driftloop_scale_b_{tag}"}
        self.created: list[str] = []

    def url(self, db: str) -> str:
        """SQLAlchemy URL of database ``db`` (``A`` or ``B``)."""
        return f"{SERVER}/{self.names[db]}"

    def libpq(self, db: str) -> str:
        """libpq URL of database ``db``."""
        return f"{LIBPQ}/{self.names[db]}"

    def create(self, statement_timeout: float) -> None:
        """Create both databases; every new session on them has ``statement_timeout``."""
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            for name in self.names.values():
                admin.execute(f'CREATE DATABASE "{name}"')
                self.created.append(name)
                admin.execute(
                    f"ALTER DATABASE \"{name}\" SET statement_timeout = '{int(statement_timeout)}s'"
                )

    def drop(self) -> None:
        """Drop what was created."""
        if not self.created:
            return
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created = []


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that drops the databases


KEY_QUERY = """
SELECT 'ALTER TABLE ' || quote_ident(t.relname) || ' ADD CONSTRAINT ' || quote_ident(c.conname)
         || ' ' || pg_get_constraintdef(c.oid),
       'ALTER TABLE ' || quote_ident(t.relname) || ' DROP CONSTRAINT ' || quote_ident(c.conname)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relname = %s AND t.relnamespace = 'public'::regnamespace
  AND c.contype IN ('p', 'u') AND c.conparentid = 0
UNION ALL
SELECT replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '),
       'DROP INDEX ' || i.indexrelid::regclass::text
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = %s AND t.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
"""


def drop_keys(connection: psycopg.Connection[Any], table: str) -> list[str]:
    """Drop ``table``'s primary and unique keys and indexes; return the statements that build
    them again, as they were (on a partitioned table: on every partition)."""
    rows = connection.execute(KEY_QUERY, (table, table)).fetchall()
    for _create, drop in rows:
        connection.execute(drop)
    return [create for create, _drop in rows]


def autovacuum_off(connection: psycopg.Connection[Any], tables: list[str]) -> None:
    """Autovacuum off on ``tables`` and their partitions (a partitioned parent has no storage)."""
    rows = connection.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND (c.relname = ANY(%s) OR "
        "c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent::regclass::text = ANY(%s)))",
        (tables, tables),
    ).fetchall()
    for (name,) in rows:
        connection.execute(f'ALTER TABLE "{name}" SET (autovacuum_enabled = false)')


# --- Loading -----------------------------------------------------------------------------------


def prepare(scratch: Scratch, plan: Plan, references: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Migrate both databases, register the models, references and versions; create A's day
    partitions for the whole range. Returns the layout of each database."""
    from driftloop.store.partitions import PARTITIONED, ensure_partitions, list_partitions

    out: dict[str, Any] = {}
    ids: dict[str, dict[str, int]] = {}
    for db, revision in (("A", "heads"), ("B", BASELINE_REVISION)):
        engine = make_engine(scratch.url(db))
        began = time.perf_counter()
        upgrade(engine, revision)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            for spec in MODELS:
                body = ModelRegistration.model_validate(
                    {"name": spec.name, "schema": schema_of(spec)}
                )
                model, _ = register(session, body, plan.start)
                plan.model_ids[spec.name] = model.id
                save_reference(session, model, references[spec.name], plan.start)
                for s in STREAMS:
                    if s.model == spec.name:
                        role = Role.champion if s.variant == "champion" else Role.challenger
                        set_version(session, model, s.version, role, None, plan.start)
        with engine.begin() as connection:
            span = (plan.end.date() - plan.start.date()).days
            for table in PARTITIONED:
                ensure_partitions(connection, table, plan.start.date(), days_ahead=span + 7)
            partitions = {t: len(list_partitions(connection, t)) for t in PARTITIONED}
        ids[db] = dict(plan.model_ids)
        out[db] = {
            "revision": sorted(current_revisions(engine)),
            "partitions": partitions,
            "partitioned": any(partitions.values()),
            "migrate_s": time.perf_counter() - began,
        }
        engine.dispose()
    if ids["A"] != ids["B"]:  # the same COPY text goes to both
        raise RuntimeError(f"model ids differ between the databases: {ids}")
    return out


def profile_rows(engine: Engine, plan: Plan) -> bytes:
    """Drift profiles as retention keeps them (minute buckets 50 hours, hours and days 30 days)
    for every version and variant, counted on the model's own layout."""
    from driftloop.monitor.evaluation.job import MINUTE_BUCKETS_KEPT
    from driftloop.monitor.profiles import GRAINS, BaselineCache, bucket_start

    cache = BaselineCache()
    sessions = make_sessionmaker(engine)
    per_minute = plan.records / ((plan.end - plan.start).total_seconds() / 60)
    lines = []
    now = plan.end.isoformat()
    switch = plan.start + (plan.end - plan.start) * 2 / 3  # when the challenger started
    with sessions() as session:
        for spec in MODELS:
            model = get_model(session, spec.name)
            baseline = cache.get(session, model)
            if baseline is None:
                raise RuntimeError(f"no baseline for {spec.name}")
            layout = baseline.layout
            docs = [json.loads(d) for d in plan.inputs[spec.name][:1000]]
            outs = [json.loads(d) for d in plan.outputs[spec.name][:1000]]
            seen: set[tuple[str, str]] = set()
            for s in (s for s in STREAMS if s.model == spec.name):
                if (s.version, s.variant) in seen:
                    continue  # a version's rows on a slot it gave up: left out of its profiles
                seen.add((s.version, s.variant))
                since = switch if s.after > 0.0 else plan.start
                until = plan.end
                rows = max(1, round(per_minute * len(s.slots) / 20))
                vector, _, _ = layout.count(docs[:rows], outs[:rows])
                for grain, top in (
                    ("minute", plan.end - MINUTE_BUCKETS_KEPT),
                    ("hour", plan.start),
                    ("day", plan.start),
                ):
                    step = GRAINS[grain]
                    at = bucket_start(max(top, since), grain)
                    while at < until:
                        # A bucket counts the minutes of it the stream had traffic in: the
                        # first (the challenger's start) and the last (now) are partial.
                        minutes = (min(at + step, until) - max(at, since)) / GRAINS["minute"]
                        bucket = vector * minutes
                        lines.append(
                            f"{plan.model_ids[spec.name]}\t{layout.fingerprint}\t{s.version}\t"
                            f"{s.variant}\t{grain}\t{at.isoformat()}\t{int(bucket[0])}\t"
                            f"\\\\x{bucket.tobytes().hex()}\t{now}\n"
                        )
                        at += step
    return "".join(lines).encode()


def load(scratch: Scratch, plan: Plan, load_timeout: float) -> dict[str, Any]:
    """COPY the generated rows into both databases at once; rebuild keys; ANALYZE."""
    engine_b = make_engine(scratch.url("B"))
    profiles = profile_rows(engine_b, plan)
    engine_b.dispose()
    labels, ood = plan.label_rows(), plan.ood_rows()
    queues: dict[str, queue.Queue[bytes | None]] = {db: queue.Queue(maxsize=3) for db in "AB"}
    timings: dict[str, dict[str, float]] = {db: {} for db in "AB"}
    errors: list[BaseException] = []

    def writer(db: str) -> None:
        drained = False
        try:
            with psycopg.connect(scratch.libpq(db)) as connection:
                connection.execute(f"SET statement_timeout = '{int(load_timeout)}s'")
                connection.execute("SET maintenance_work_mem = '512MB'")
                began = time.perf_counter()
                rebuild = drop_keys(connection, "records") + drop_keys(connection, "labels")
                connection.commit()
                with connection.cursor().copy(f"COPY records ({RECORD_COLUMNS}) FROM STDIN") as cp:
                    while (chunk := queues[db].get()) is not None:
                        cp.write(chunk)
                    drained = True
                with connection.cursor().copy(f"COPY labels ({LABEL_COLUMNS}) FROM STDIN") as cp:
                    cp.write(labels)
                with connection.cursor().copy(
                    f"COPY drift_profiles ({PROFILE_COLUMNS}) FROM STDIN"
                ) as cp:
                    cp.write(profiles)
                with connection.cursor().copy(
                    f"COPY drift_ood_records ({OOD_COLUMNS}) FROM STDIN"
                ) as cp:
                    cp.write(ood)
                connection.commit()
                timings[db]["copy_s"] = time.perf_counter() - began
                began = time.perf_counter()
                for statement in rebuild:
                    connection.execute(statement)
                connection.commit()
                timings[db]["keys_s"] = time.perf_counter() - began
                began = time.perf_counter()
                tables = ["records", "labels", "drift_profiles", "drift_ood_records"]
                autovacuum_off(connection, tables)
                connection.commit()
                connection.autocommit = True
                connection.execute("ANALYZE " + ", ".join(tables))
                timings[db]["analyze_s"] = time.perf_counter() - began
        except BaseException as exc:
            errors.append(exc)
            while not drained and queues[db].get() is not None:  # the generator must not block
                pass

    threads = [threading.Thread(target=writer, args=(db,), daemon=True) for db in "AB"]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    generated = 0
    for chunk in plan.chunks():
        for db in "AB":
            queues[db].put(chunk)
        generated += CHUNK
        if generated % 1_000_000 == 0:
            log(f"  {generated:,} records generated and sent ({time.perf_counter() - began:.0f} s)")
    for db in "AB":
        queues[db].put(None)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {
        "seconds": time.perf_counter() - began,
        "per_database": timings,
        "labels": labels.count(b"\n"),
        "profiles": profiles.count(b"\n"),
        "ood_records": ood.count(b"\n"),
    }


def table_sizes(scratch: Scratch) -> dict[str, dict[str, int]]:
    """Rows and bytes of ``records`` (partitions included) in each database."""
    out = {}
    for db in "AB":
        with psycopg.connect(scratch.libpq(db)) as connection:
            rows = connection.execute("SELECT count(*) FROM records").fetchone()
            size = connection.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.oid = 'records'::regclass OR c.oid IN "
                "(SELECT inhrelid FROM pg_inherits WHERE inhparent = 'records'::regclass)"
            ).fetchone()
            out[db] = {"records": int(rows[0]) if rows else 0, "bytes": int(size[0]) if size else 0}
    return out


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
