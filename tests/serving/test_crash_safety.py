"""SIGKILL in the middle of live traffic loses no answered prediction: the sidecar in front of a
real BentoML service, and a real BentoML service with ``DriftloopMiddleware``, each killed while
clients are being answered, then restarted on the same (default) capture-log folder; a real
monitor must end up with every answered request exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from driftloop.store import Model, RecordRow
from tests.procs import MonitorProcess, free_port
from tests.serving.conftest import Bentos
from tests.serving.procs import BentoProcess, SidecarProcess, record_counts, wait_for_records
from tests.serving.test_integration import rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Clients:
    """``n`` client threads sending one-row predictions with their own request ids, noting
    the ids of the requests answered 200 (the whole response received)."""

    def __init__(self, url: str, features: list[str], n: int = 4) -> None:
        self.url = url
        self.features = features
        self.answered: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(n)
        ]

    def _run(self, k: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                rid = f"c{k}-{i}"
                i += 1
                try:
                    response = client.post(
                        f"{self.url}/predict",
                        json={"inputs": rows(self.features, 1, i)},
                        headers={"X-Request-ID": rid},
                    )
                except httpx.HTTPError:
                    with self.lock:
                        self.failed += 1
                    time.sleep(0.01)
                    continue
                if response.status_code == 200:
                    with self.lock:
                        self.answered.append(rid)

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def wait_answered(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered) < n:
            assert time.monotonic() < deadline, f"only {len(self.answered)} answered"
            time.sleep(0.05)


def stored_ids(monitor: MonitorProcess, model: str) -> list[str]:
    engine = create_engine(monitor.database_url)
    try:
        with engine.connect() as connection:
            query = (
                select(RecordRow.request_id)
                .join(Model, Model.id == RecordRow.model_id)
                .where(Model.name == model)
            )
            return [r[0] for r in connection.execute(query).all()]
    finally:
        engine.dispose()


def assert_each_answered_once(monitor: MonitorProcess, model: str, answered: list[str]) -> None:
    wait_for_records(monitor.url, model, len(answered), timeout=60)
    deadline = time.monotonic() + 30
    ids = stored_ids(monitor, model)
    while not set(answered) <= set(ids) and time.monotonic() < deadline:
        time.sleep(0.2)
        ids = stored_ids(monitor, model)
    assert len(ids) == len(set(ids))
    missing = set(answered) - set(ids)
    assert not missing, f"{len(missing)} answered requests never recorded: {sorted(missing)[:5]}"
    # Requests in flight at the kill may be recorded too (logged, answer lost on the way):
    # never more than the clients had in flight.
    assert len(ids) - len(answered) <= 4


def test_sigkill_of_the_sidecar_under_traffic_loses_no_answered_request(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-crash-sidecar"
    args = [
        "--model",
        model,
        "--champion",
        bentos.champion.url,
        "--champion-version",
        "v1",
        "--monitor",
        monitor.url,
    ]  # fmt: skip — no --spool-dir: the default folder
    # Batches wait up to 2 s, so the kill surely finds answered records not yet shipped.
    slow = {"DRIFTLOOP_SIDECAR_CAPTURE__BATCH_AGE_SECONDS": "2"}
    first = SidecarProcess("sidecar-crash-1", args, tmp_path, slow)
    try:
        with Clients(first.url, bentos.features) as clients:
            clients.wait_answered(150)
            first.stop(signal.SIGKILL)  # in the middle of the traffic
            answered = list(clients.answered)
    finally:
        first.stop(signal.SIGKILL)
    shipped_before = record_counts(monitor.url, model)["record_count"]
    assert shipped_before < len(answered)  # the kill did catch records in flight
    logs = list((tmp_path / "xdg-state" / "driftloop" / "spool").iterdir())
    assert [p.name for p in logs] == [f"{model}-{first.port}"]
    # Restarted on the same port, so on the same default folder: it sends what the log holds.
    ports = (first.port, first.admin_port)
    with SidecarProcess("sidecar-crash-2", args, tmp_path, ports=ports) as second:
        assert_each_answered_once(monitor, model, answered)
        assert second.metric("driftloop_records_replayed_total") > 0


def test_sigkill_of_a_bento_with_the_middleware_under_traffic_loses_no_answered_request(
    bentos: Bentos, monitor: MonitorProcess, bento_env: dict[str, str], tmp_path: Path
) -> None:
    # A BentoML home of its own that shares the built Bentos and models: each `bentoml serve`
    # empties its home's Prometheus folder, which must not happen under the session's Bentos.
    home = tmp_path / "bentoml-home"
    home.mkdir()
    for part in ("bentos", "models"):
        os.symlink(Path(bento_env["BENTOML_HOME"]) / part, home / part)
    model = "iris-challenger"  # the name the challenger Bento was built with
    env = {**bento_env, "BENTOML_HOME": str(home), "XDG_STATE_HOME": str(tmp_path / "xdg"),
           "DRIFTLOOP_MONITOR_URL": monitor.url, "DRIFTLOOP_MODEL_VERSION": "crash"}  # fmt: skip
    target = bentos.challenger.target
    before = record_counts(monitor.url, model)["record_count"]
    # The first Bento's monitor URL leads nowhere, so every answered record is still in its log
    # when it is killed (however fast the machine); the second one, on the same folder, must
    # send them all.
    unreachable = {**env, "DRIFTLOOP_MONITOR_URL": f"http://127.0.0.1:{free_port()}"}
    first = BentoProcess("bento-crash-1", target, tmp_path, unreachable).wait()
    try:
        with Clients(first.url, bentos.features) as clients:
            clients.wait_answered(100)
            first.stop(signal.SIGKILL)  # the arbiter and its workers (each in a session of its own)
            answered = list(clients.answered)
    finally:
        first.stop(signal.SIGKILL)
    assert record_counts(monitor.url, model)["record_count"] == before  # nothing shipped yet
    second = BentoProcess("bento-crash-2", target, tmp_path, env).wait()
    try:
        # The log is read again on the first request (or at start-up): give it one.
        httpx.post(f"{second.url}/predict", json={"inputs": rows(bentos.features, 1, 0)},
                   headers={"X-Request-ID": "after-restart"})  # fmt: skip
        assert_each_answered_once(monitor, model, [*answered, "after-restart"])
    finally:
        second.stop()
