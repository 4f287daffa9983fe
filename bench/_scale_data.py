"""The data of ``bench/scale.py`` and how it gets into PostgreSQL.

The generated traffic (three models, their versions and variants, input and output documents,
labels, drift profiles and out-of-distribution flags), the two scratch databases it goes into
(``A`` at head, ``B`` at 0010), and the bulk load: migrate and register in both, then ``COPY``
the same rows into both at once, rebuild the keys, ``ANALYZE``. A helper module of
``bench/scale.py`` (imported from the script's folder), not a benchmark of its own: the
leading underscore keeps ``make bench`` from running it.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from driftloop.contract import ModelRegistration, Role
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
