"""The whole loop on loopback for the dashboard tests: monitor, Bento, sidecar, webhook receiver.

Traffic flows through every public API while the tests query Prometheus: predictions through the
sidecar (canary between two versions), records straight to the monitor (with class scores, so the
performance estimation has something to estimate), labels, a reference dataset with scores, a
rollout, a manual retraining trigger whose webhook a local receiver acknowledges.
Every step's HTTP answer is kept in ``steps`` so a failing test can say which API refused what.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.dashboards.loopback import serve
from tests.procs import MonitorProcess, free_port, wait_http

MODEL = "iris"
BENTO_DIR = Path(__file__).resolve().parent / "bento"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width", "region")
REGIONS = ("north", "south", "east")
ROLLOUT_CONFIG = {"min_compare_samples": 10, "min_step_samples": 10, "srm_grace_seconds": 0}
"""A rollout that reaches its first verdicts within seconds of test traffic."""
WEBHOOK_SECRET = "whsec_" + "ZHJpZnRsb29wLWRhc2hib2FyZHMtdGVzdA=="


def sidecar_available() -> bool:
    """True when this checkout has the ``driftloop sidecar`` command."""
    from driftloop.cli import app

    return any(c.name == "sidecar" for c in app.registered_commands)


@dataclass
class Receiver:
    """A retraining webhook receiver: the first delivery fails (503), later ones succeed."""

    seen: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.seen.append(request.headers.get("webhook-id", ""))
            return Response(status_code=503 if len(self.seen) == 1 else 204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@dataclass
class Stack:
    """Running processes, their URLs, and what each API answered."""

    workdir: Path
    monitor: MonitorProcess
    sidecar_url: str | None = None
    sidecar_admin: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    sent_ids: list[str] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    _stop: threading.Event = field(default_factory=threading.Event)

    def step(self, name: str, response: httpx.Response) -> httpx.Response:
        """Remember what an API answered."""
        self.steps[name] = response.status_code
        return response

    def targets(self) -> dict[str, list[str]]:
        """Prometheus scrape targets by job."""
        out = {"driftloop-monitor": [self.monitor.url.removeprefix("http://")]}
        if self.sidecar_admin:
            out["driftloop-sidecar"] = [self.sidecar_admin.removeprefix("http://")]
        return out


def _row(rng: random.Random, shift: float) -> dict[str, Any]:
    # Shifted rows also bring a region the reference never saw ("west").
    regions = (*REGIONS, "west") if shift else REGIONS
    return {
        "sepal_length": round(rng.gauss(5.8, 0.8), 2),
        "sepal_width": round(rng.gauss(3.0, 0.4), 2),
        "petal_length": round(rng.gauss(3.7, 1.7) + shift, 2),
        "petal_width": round(rng.gauss(1.2, 0.7), 2),
        "region": rng.choice(regions),
    }


def _label(row: dict[str, Any]) -> str:
    petal = row["petal_length"]
    return "setosa" if petal < 2.5 else "versicolor" if petal < 4.9 else "virginica"


CLASSES = ("setosa", "versicolor", "virginica")
SCORE_COLUMNS = tuple(f"p_{c}" for c in CLASSES)


def _scores(row: dict[str, Any]) -> dict[str, float]:
    """Class scores of a soft version of ``_label``: closer to a class's petal length, likelier."""
    weights = [math.exp(-((row["petal_length"] - c) ** 2) / 2) for c in (1.5, 3.7, 6.0)]
    return {c: round(w / sum(weights), 4) for c, w in zip(CLASSES, weights, strict=True)}


def _reference_csv(rng: random.Random, rows: int = 300) -> bytes:
    out = io.StringIO()
    out.write(",".join((*FEATURES, "label", "prediction", *SCORE_COLUMNS)) + "\n")
    for _ in range(rows):
        row = _row(rng, 0.0)
        guess = _label(row) if rng.random() < 0.9 else "setosa"
        scores = ",".join(str(v) for v in _scores(row).values())
        out.write(",".join(str(row[f]) for f in FEATURES) + f",{_label(row)},{guess},{scores}\n")
    return out.getvalue().encode()


def _records(
    rng: random.Random, version: str, variant: str, n: int, age: timedelta = timedelta(0)
) -> list[dict[str, Any]]:
    now = (datetime.now(UTC) - age).isoformat()
    out = []
    for _ in range(n):
        row = _row(rng, 2.5)  # shifted: the monitor should see drift on petal_length
        out.append(
            {
                "request_id": uuid.uuid4().hex,
                "model": MODEL,
                "version": version,
                "variant": variant,
                "timestamp": now,
                "inputs": row,
                "outputs": {"prediction": _label(row), "probabilities": _scores(row)},
                "latency_ms": 3.0,
                "status": 200,
            }
        )
    return out


def _start_bento(stack: Stack) -> str:
    port = free_port()
    env = {
        **os.environ,
        "BENTOML_HOME": str(stack.workdir / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    with (stack.workdir / "bento.log").open("ab") as log:
        process = subprocess.Popen(
            [bentoml, "serve", "service:Iris", "--host", "127.0.0.1", "--port", str(port)],
            cwd=BENTO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    stack.procs.append(process)
    return f"http://127.0.0.1:{port}"


def _start_sidecar(stack: Stack, bento: str) -> None:
    port, admin = free_port(), free_port()
    with (stack.workdir / "sidecar.log").open("ab") as log:
        process = _spawn_sidecar(stack, bento, port, admin, log)
    stack.procs.append(process)
    stack.sidecar_url = f"http://127.0.0.1:{port}"
    stack.sidecar_admin = f"http://127.0.0.1:{admin}"
    wait_http(f"{stack.sidecar_admin}/healthz", 60, process)


def _spawn_sidecar(
    stack: Stack, bento: str, port: int, admin: int, log: Any
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftloop",
            "sidecar",
            "--model",
            MODEL,
            "--champion",
            bento,
            "--champion-version",
            "v1",
            "--challenger",
            bento,
            "--challenger-version",
            "v2",
            "--mode",
            "canary",
            "--weight",
            "0.5",
            "--monitor",
            stack.monitor.url,
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--spool-dir",
            str(stack.workdir / "spool"),
            "--poll-seconds",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DRIFTLOOP_SIDECAR_CAPTURE__BATCH_AGE_SECONDS": "0.2"},
        start_new_session=True,
    )


def _setup(stack: Stack, rng: random.Random, webhook: str) -> None:
    url, http = stack.monitor.url, stack.http
    stack.step(
        "reference",
        http.put(
            f"{url}/v1/models/{MODEL}/reference",
            params={
                "label_column": "label",
                "prediction_column": "prediction",
                "score_columns": ",".join(SCORE_COLUMNS),
            },
            content=_reference_csv(rng),
            headers={"content-type": "text/csv"},
        ),
    )
    schema = http.get(f"{url}/v1/models/{MODEL}").json()["schema"]
    for feature in schema["features"]:
        feature["segment"] = feature["name"] == "region"
    stack.step("schema", http.post(f"{url}/v1/models", json={"name": MODEL, "schema": schema}))
    # Records of the window before the drift window (60 minutes), for the window-to-window view.
    earlier: dict[str, Any] = {"batch_id": uuid.uuid4().hex, "source": "test"}
    earlier["records"] = _records(rng, "v1", "champion", 200, age=timedelta(minutes=90))
    stack.step("earlier records", http.post(f"{url}/v1/records", json=earlier))
    for version, variant in (("v1", "champion"), ("v2", "challenger")):
        batch: dict[str, Any] = {"batch_id": uuid.uuid4().hex, "source": "test"}
        batch["records"] = _records(rng, version, variant, 200)
        stack.step(f"records {variant}", http.post(f"{url}/v1/records", json=batch))
        labels = [
            {"request_id": r["request_id"], "label": _label(r["inputs"])} for r in batch["records"]
        ]
        stack.step(f"labels {variant}", http.post(f"{url}/v1/feedback", json=labels))
    stack.step(
        "dataset", http.post(f"{url}/v1/models/{MODEL}/datasets", json={"include_reference": True})
    )
    stack.step("invalid batch", http.post(f"{url}/v1/records", json={"records": "nope"}))
    stack.step(
        "retraining policy",
        http.put(f"{url}/v1/models/{MODEL}/retraining", json={"webhook_url": webhook}),
    )
    stack.step(
        "rollout start",
        http.post(
            f"{url}/v1/models/{MODEL}/rollout",
            json={"action": "start", "version": "v2", "config": ROLLOUT_CONFIG},
        ),
    )
    stack.step("retrain", http.post(f"{url}/v1/models/{MODEL}/retrain", json={"force": True}))


def _traffic(stack: Stack, seed: int) -> None:
    """Predictions through the sidecar, records and labels to the monitor, until stopped."""
    rng = random.Random(seed)
    url, http = stack.monitor.url, stack.http
    rounds = 0
    while not stack._stop.is_set():
        rounds += 1
        if rounds % 10 == 0:  # keep webhook attempts (and their latency histogram) moving
            with contextlib.suppress(httpx.HTTPError):
                http.post(f"{url}/v1/models/{MODEL}/retrain", json={"force": True})
        with contextlib.suppress(httpx.HTTPError):
            if stack.sidecar_url:
                ids = []
                for _ in range(5):
                    request_id = uuid.uuid4().hex
                    row = _row(rng, 2.5)
                    answer = http.post(
                        f"{stack.sidecar_url}/predict",
                        json={"inputs": [row]},
                        headers={"x-request-id": request_id},
                    )
                    stack.steps[f"sidecar {answer.status_code}"] = answer.status_code
                    ids.append({"request_id": request_id, "label": _label(row)})
                http.post(f"{url}/v1/feedback", json=ids)
            batch: dict[str, Any] = {"batch_id": uuid.uuid4().hex, "source": "test"}
            batch["records"] = _records(rng, "v1", "champion", 20)
            http.post(f"{url}/v1/records", json=batch)
        stack._stop.wait(0.5)


@contextlib.contextmanager
def running_stack(workdir: Path, with_sidecar: bool) -> Iterator[Stack]:
    """Start everything, set the model up, and keep traffic flowing while the caller runs."""
    rng = random.Random(7)
    receiver = Receiver()
    with serve(receiver.app()) as hook_url:
        monitor = MonitorProcess(
            f"sqlite:///{workdir / 'driftloop.db'}",
            workdir,
            env={
                "DRIFTLOOP_JOBS__INTERVAL_SECONDS": "1",
                "DRIFTLOOP_ROLLOUT__EVALUATE_INTERVAL_SECONDS": "1",
                "DRIFTLOOP_RETRAIN__EVALUATE_INTERVAL_SECONDS": "1",
                "DRIFTLOOP_WEBHOOKS__DELIVER_INTERVAL_SECONDS": "1",
                # Estimates are reused for a minute by default: the set-up's first read (no
                # records yet) would hide the traffic's estimates for that long.
                "DRIFTLOOP_ESTIMATION__TTL_SECONDS": "2",
                # Trigger and dataset snapshots go to the test's folder, never the working tree.
                "DRIFTLOOP_SNAPSHOT_DIR": str(workdir / "datasets"),
                "DRIFTLOOP_WEBHOOK_URL": f"{hook_url}/hook",
                "DRIFTLOOP_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
        )
        stack = Stack(workdir=workdir, monitor=monitor)
        traffic: threading.Thread | None = None
        try:
            bento = _start_bento(stack) if with_sidecar else None
            monitor.start()
            if bento is not None:
                wait_http(f"{bento}/readyz", 90, stack.procs[0])
                _start_sidecar(stack, bento)
            _setup(stack, rng, f"{hook_url}/hook")
            traffic = threading.Thread(target=_traffic, args=(stack, 11), daemon=True)
            traffic.start()
            yield stack
        finally:
            stack._stop.set()
            if traffic is not None:
                traffic.join(30)
            for process in reversed(stack.procs):
                _stop_process(process)
            monitor.stop()
            stack.http.close()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
