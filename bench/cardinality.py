"""Cardinality: what 1,000 models cost the monitor's scrape, status page and periodic jobs.

One process, one run: a monitor app (``create_app``, the real routes, jobs and collectors) on a
scratch database gets ``--models`` models by ingest (40 records each; labels for 20 % of them, a
reference dataset for 20 %), then the leader's jobs run once each (timed against their interval)
and the reads are timed (median of ``--rounds``): ``GET /metrics`` (the Prometheus scrape,
target < 1 s; Prometheus gives up at 10 s), ``GET /`` (the status page, target < 1 s) and
``GET /v1/models``.
The peer, measured in the same run on the same database engine, is the same monitor with
``--peer-models`` models (10): the ratio says how each cost grows with the number of models.
Also printed: series in the scrape and its size.

Requests go through Starlette's in-process test client (the ASGI app without sockets); the job
figures are the jobs' own wall time. The machine is shared with other sessions: figures are
upper bounds.

Run: ``.venv/bin/python bench/cardinality.py [--models 1000] [--database sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get(
    "DRIFTLOOP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RECORDS_PER_MODEL = 40
LABELED_SHARE = 0.2
REFERENCE_SHARE = 0.2


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A fresh migrated database URL, dropped afterwards."""
    from driftloop.store import make_engine, upgrade

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
        return
    name = f"driftloop_card_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _records(model: str, rng: np.random.Generator, now: datetime) -> list[dict[str, Any]]:
    out = []
    for i in range(RECORDS_PER_MODEL):
        out.append(
            {
                "request_id": f"{model}-{i}",
                "model": model,
                "version": "v1",
                "variant": "champion",
                "timestamp": (now - timedelta(minutes=int(rng.integers(1, 50)))).isoformat(),
                "inputs": {"x": float(rng.normal()), "city": str(rng.choice(["a", "b", "c"]))},
                "outputs": {"prediction": str(rng.choice(["yes", "no"]))},
                "latency_ms": 3.0,
                "status": 200,
            }
        )
    return out


def _reference(rng: np.random.Generator) -> bytes:
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=300),
            "city": rng.choice(["a", "b", "c"], size=300),
            "prediction": rng.choice(["yes", "no"], size=300),
        }
    )
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


def populate(client: Any, models: int, rng: np.random.Generator, now: datetime) -> None:
    """Register ``models`` models by ingest: records for all, labels for LABELED_SHARE of them
    (half their records), a reference dataset for REFERENCE_SHARE."""
    per_batch = 50
    names = [f"m{i:05d}" for i in range(models)]
    for start in range(0, models, per_batch):
        chunk = names[start : start + per_batch]
        records = [r for name in chunk for r in _records(name, rng, now)]
        body = {"batch_id": uuid.uuid4().hex, "source": "bench", "records": records}
        response = client.post("/v1/records", json=body)
        response.raise_for_status()
        labeled = set(names[: max(1, int(models * LABELED_SHARE))])
        labels = [
            {
                "request_id": r["request_id"],
                "model": r["model"],
                "label": r["outputs"]["prediction"],
            }
            for r in records[::2]
            if r["model"] in labeled
        ]
        if labels:
            client.post("/v1/feedback", json=labels).raise_for_status()
    for name in names[: max(1, int(models * REFERENCE_SHARE))]:
        client.put(
            f"/v1/models/{name}/reference",
            content=_reference(rng),
            headers={"content-type": "application/vnd.apache.parquet"},
        ).raise_for_status()


def timed_get(client: Any, path: str, rounds: int) -> tuple[float, int, float]:
    """Median seconds of ``rounds`` GETs, the size of the last answer, the first GET's seconds
    (the scrape after the jobs ran builds the performance families; later ones reuse them)."""
    seconds, size = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        response = client.get(path)
        seconds.append(time.perf_counter() - start)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(seconds), size, seconds[0]


def measure(kind: str, models: int, rounds: int) -> dict[str, Any]:
    """Everything for one monitor with ``models`` models."""
    from fastapi.testclient import TestClient

    from driftloop.clock import FrozenClock
    from driftloop.server import create_app
    from driftloop.settings import IngestSettings, JobSettings, Settings

    rng = np.random.default_rng(7)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    out: dict[str, Any] = {"models": models}
    with scratch_database(kind) as url, tempfile.TemporaryDirectory() as snaps:
        settings = Settings(
            database_url=url,
            jobs=JobSettings(enabled=False),
            snapshot_dir=snaps,
            ingest=IngestSettings(max_models=models + 10),
            allowed_hosts=["testserver"],
        )
        app = create_app(settings, clock=FrozenClock(now))
        state = app.state.driftloop
        with TestClient(app) as client:
            start = time.perf_counter()
            populate(client, models, rng, now)
            out["populate_s"] = time.perf_counter() - start
            jobs: dict[str, tuple[float, float]] = {}
            for name, job in state.jobs.jobs.items():
                start = time.perf_counter()
                state.jobs.run_job(name, state)
                jobs[name] = (time.perf_counter() - start, job.interval)
            out["jobs"] = jobs
            out["metrics_s"], out["metrics_bytes"], out["metrics_first_s"] = timed_get(
                client, "/metrics", rounds
            )
            scrape = client.get("/metrics").text
            out["series"] = sum(1 for line in scrape.splitlines() if line and line[0] != "#")
            out["status_s"], out["status_bytes"], _ = timed_get(client, "/", rounds)
            out["models_s"], out["models_bytes"], _ = timed_get(client, "/v1/models", rounds)
        state.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--peer-models", type=int, default=10)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine shared with other sessions; database {args.database}; median of {args.rounds}")
    peer = measure(args.database, args.peer_models, args.rounds)
    big = measure(args.database, args.models, args.rounds)
    print(f"{'':34} {args.peer_models:>10} models {args.models:>10} models   ratio  target")
    for key, label, target in (
        ("metrics_s", "GET /metrics (s)", "< 1 s"),
        ("metrics_first_s", "GET /metrics, first after jobs (s)", "< 1 s"),
        ("status_s", "GET / status page (s)", "< 1 s"),
        ("models_s", "GET /v1/models (s)", ""),
    ):
        ratio = big[key] / peer[key] if peer[key] else float("nan")
        print(f"{label:34} {peer[key]:>17.3f} {big[key]:>17.3f} {ratio:>7.1f}  {target}")
    print(f"{'series in the scrape':34} {peer['series']:>17} {big['series']:>17}")
    print(
        f"{'scrape size (kB)':34} {peer['metrics_bytes'] / 1e3:>17.1f} "
        f"{big['metrics_bytes'] / 1e3:>17.1f}"
    )
    print(
        f"{'status page size (kB)':34} {peer['status_bytes'] / 1e3:>17.1f} "
        f"{big['status_bytes'] / 1e3:>17.1f}"
    )
    for name, (seconds, interval) in big["jobs"].items():
        small = peer["jobs"][name][0]
        verdict = "ok" if seconds < interval else "OVER"
        print(
            f"{'job ' + name + ' (s)':34} {small:>17.3f} {seconds:>17.3f} "
            f"{seconds / small if small else float('nan'):>7.1f}  < {interval:g} s {verdict}"
        )
    print(f"populate ({args.models} models by ingest): {big['populate_s']:.1f} s")


if __name__ == "__main__":
    main()
