"""Real BentoML services behind a real sidecar, shipping to a real monitor, on loopback."""

from __future__ import annotations

import random
import signal
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select

from driftloop.store import Model, RecordRow
from tests.procs import MonitorProcess, free_port
from tests.serving.conftest import Bentos
from tests.serving.procs import SidecarProcess, record_counts, wait_for_records
from tests.serving.servers import ServerThread, model_app

pytestmark = pytest.mark.integration

SAMPLE = [
    [5.1, 3.5, 1.4, 0.2],
    [6.2, 2.9, 4.3, 1.3],
    [7.7, 3.0, 6.1, 2.3],
    [5.8, 2.7, 5.1, 1.9],
]


def rows(features: list[str], n: int, seed: int) -> list[dict[str, float]]:
    rand = random.Random(seed)
    return [dict(zip(features, rand.choice(SAMPLE), strict=True)) for _ in range(n)]


def sidecar_args(bentos: Bentos, monitor_url: str, model: str, *extra: str) -> list[str]:
    return ["--model", model, "--champion", bentos.champion.url, "--champion-version", "v1",
            "--challenger", bentos.challenger.url, "--challenger-version", "v2",
            "--monitor", monitor_url, *extra]  # fmt: skip


def stored(
    monitor: MonitorProcess, model: str
) -> list[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    """(request_id, variant, version, inputs, outputs) of every stored record of ``model``."""
    engine = create_engine(monitor.database_url)
    try:
        with engine.connect() as connection:
            query = (
                select(RecordRow.request_id, RecordRow.variant, RecordRow.version,
                       RecordRow.inputs, RecordRow.outputs)
                .join(Model, Model.id == RecordRow.model_id)
                .where(Model.name == model)
            )  # fmt: skip
            return [(r[0], r[1], r[2], r[3], r[4]) for r in connection.execute(query).all()]
    finally:
        engine.dispose()


def test_the_champion_bento_passed_its_build_smoke_test(bentos: Bentos) -> None:
    assert bentos.champion_build["smoke"]["rows"] == 10
    assert bentos.features == ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                               "petal width (cm)"]  # fmt: skip
    answer = httpx.post(
        f"{bentos.champion.url}/predict", json={"inputs": rows(bentos.features, 2, 0)}
    ).json()
    assert [set(a) for a in answer] == [{"prediction", "probabilities"}] * 2


def bento_metric(url: str, name: str, model: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == model:
                total += sample.value
    return total


def test_the_middleware_captures_inside_a_real_bento(bentos: Bentos) -> None:
    # The challenger's middleware has no monitor: its records are counted as dropped
    # (no_monitor), never as sent.
    url = bentos.challenger.url
    name = "driftloop_capture_requests_total"
    before = bento_metric(url, name, "iris-challenger")
    body = {"inputs": rows(bentos.features, 2, 5)}
    response = httpx.post(f"{url}/predict", json=body, headers={"X-Request-ID": "mw-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "mw-1"
    deadline = time.monotonic() + 10
    while bento_metric(url, name, "iris-challenger") < before + 1:
        if time.monotonic() > deadline:
            text = httpx.get(f"{url}/metrics").text
            lines = [x for x in text.splitlines() if "driftloop_records" in x]
            raise AssertionError(f"the middleware did not capture the rows: {before} {lines}")
        time.sleep(0.1)
    assert bento_metric(url, "driftloop_records_sent_total", "iris-challenger") == 0


def test_canary_answers_everything_records_every_row_once_with_the_right_variant(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-canary"
    args = sidecar_args(bentos, monitor.url, model, "--mode", "canary", "--weight", "0.3")
    requests = [rows(bentos.features, 1 + i % 3, i) for i in range(160)]
    with SidecarProcess("sidecar-canary", args, tmp_path) as sidecar, httpx.Client() as client:

        def call(body: list[dict[str, float]]) -> tuple[int, str, int]:
            response = client.post(f"{sidecar.url}/predict", json={"inputs": body})
            return response.status_code, response.headers["x-driftloop-variant"], len(body)

        before = httpx.get(f"{sidecar.admin}/healthz").json()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, requests))
        after = httpx.get(f"{sidecar.admin}/healthz").json()
        assert {status for status, _, _ in answers} == {200}
        expected: Counter[str] = Counter()
        for _, variant, n in answers:
            expected[variant] += n
        counts = wait_for_records(monitor.url, model, sum(expected.values()))
    # The split below is only meaningful under the policy of the flags, unchanged throughout
    # (a policy from the monitor would replace it: none exists for this model).
    policy = [(s["mode"], s["weight"], s["revision"]) for s in (before, after)]
    assert policy[0] == policy[1] == ("canary", 0.3, policy[0][2]), policy
    challenger_requests = sum(v == "challenger" for _, v, _ in answers)
    sigma = (160 * 0.3 * 0.7) ** 0.5
    assert abs(challenger_requests - 48) < 4.5 * sigma, (challenger_requests, expected)
    assert counts == {
        "record_count": sum(expected.values()),
        "records_by_version": {
            "v1": {"champion": expected["champion"]},
            "v2": {"challenger": expected["challenger"]},
        },
    }
    ids = [r[0] for r in stored(monitor, model)]
    assert len(ids) == len(set(ids))


def test_ab_assignment_of_a_user_never_changes_across_requests_restarts_and_replicas(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    args = sidecar_args(bentos, monitor.url, "iris-ab", "--mode", "ab", "--weight", "0.5",
                        "--sticky-key", "header:X-User-ID")  # fmt: skip
    body = {"inputs": rows(bentos.features, 1, 1)}
    users = [f"user-{i}" for i in range(20)]

    def assignments(url: str) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {u: set() for u in users}
        with httpx.Client() as client:
            for _ in range(2):
                for user in users:
                    response = client.post(f"{url}/predict", json=body, headers={"X-User-ID": user})
                    assert response.status_code == 200
                    seen[user].add(response.headers["x-driftloop-variant"])
        return seen

    with SidecarProcess("sidecar-ab-1", args, tmp_path) as first:
        one = assignments(first.url)
    with SidecarProcess("sidecar-ab-2", args, tmp_path) as replica:
        two = assignments(replica.url)
    assert all(len(v) == 1 for v in one.values())
    assert one == two
    assert {next(iter(v)) for v in one.values()} == {"champion", "challenger"}


def test_shadow_records_pair_with_the_champions_by_request_id(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-shadow"
    args = sidecar_args(bentos, monitor.url, model, "--mode", "shadow")
    with SidecarProcess("sidecar-shadow", args, tmp_path) as sidecar, httpx.Client() as client:
        for i in range(20):
            response = client.post(
                f"{sidecar.url}/predict", json={"inputs": rows(bentos.features, 2, i)}
            )
            assert response.status_code == 200
            assert response.headers["x-driftloop-variant"] == "champion"
        counts = wait_for_records(monitor.url, model, 80)
    assert counts["records_by_version"] == {"v1": {"champion": 40}, "v2": {"shadow": 40}}
    by_id: dict[str, dict[str, Any]] = {}
    for request_id, variant, version, inputs, _ in stored(monitor, model):
        by_id.setdefault(request_id, {})[variant] = (version, inputs)
    assert len(by_id) == 40
    for pair in by_id.values():
        assert pair["champion"][0] == "v1"
        assert pair["shadow"][0] == "v2"
        assert pair["champion"][1] == pair["shadow"][1]


def test_an_unmodified_third_party_bento_works_behind_the_sidecar(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-example"
    columns = ["sl", "sw", "pl", "pw"]
    registered = httpx.post(f"{monitor.url}/v1/models", json={
        "name": model,
        "schema": {
            "features": [{"name": c, "kind": "numerical"} for c in columns],
            "layout": {"input_path": "input_series", "output_path": "", "columns": columns},
        },
    })  # fmt: skip
    assert registered.status_code == 201, registered.text
    args = ["--model", model, "--champion", bentos.thirdparty.url, "--champion-version", "example",
            "--monitor", monitor.url]  # fmt: skip
    body = {"input_series": SAMPLE}
    direct = httpx.post(f"{bentos.thirdparty.url}/classify", json=body)
    with SidecarProcess("sidecar-thirdparty", args, tmp_path) as sidecar:
        proxied = httpx.post(f"{sidecar.url}/classify", json=body, headers={"X-Request-ID": "tp-1"})
        docs = httpx.get(f"{sidecar.url}/docs.json")
        wait_for_records(monitor.url, model, 4)
    assert proxied.status_code == direct.status_code == 200
    assert proxied.json() == direct.json()
    assert docs.status_code == 200
    assert "/classify" in docs.json()["paths"]
    records = sorted(stored(monitor, model))
    assert [(r[0], r[3], r[4]) for r in records] == [
        (f"tp-1-{i}", dict(zip(columns, SAMPLE[i], strict=True)), {"prediction": direct.json()[i]})
        for i in range(4)
    ]


class Traffic(threading.Thread):
    """Sends requests back to back, noting status, latency and rows of each."""

    def __init__(self, url: str, features: list[str]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.features = features
        self.stop = threading.Event()
        self.results: list[tuple[float, int, float, int]] = []  # (time, status, latency, rows)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                body = rows(self.features, 1 + i % 2, i)
                start = time.perf_counter()
                try:
                    status = client.post(f"{self.url}/predict", json={"inputs": body}).status_code
                except httpx.HTTPError:
                    status = 0
                self.results.append((start, status, time.perf_counter() - start, len(body)))
                i += 1
                time.sleep(0.005)

    def latencies(self, since: float, until: float) -> list[float]:
        return [lat for t, _, lat, _ in self.results if since <= t < until]


def test_a_sidecar_killed_with_sigkill_replays_its_spool_after_restart(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-sigkill"
    spool = str(tmp_path / "spool")
    unreachable = f"http://127.0.0.1:{free_port()}"
    args = ["--model", model, "--champion", bentos.champion.url, "--champion-version", "v1",
            "--spool-dir", spool]  # fmt: skip
    first = SidecarProcess("sidecar-kill-1", [*args, "--monitor", unreachable], tmp_path)
    try:
        with httpx.Client() as client:
            for i in range(15):
                body = {"inputs": rows(bentos.features, 2, i)}
                assert client.post(f"{first.url}/predict", json=body).status_code == 200
        deadline = time.monotonic() + 20
        while first.metric("driftloop_records_spooled_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.metric("driftloop_records_spooled_total") > 0  # a delivery failed
    finally:
        first.stop(signal.SIGKILL)
    assert record_counts(monitor.url, model)["record_count"] == 0
    # Restarted (pointing at a monitor that is up now), it replays what the spool held.
    with SidecarProcess("sidecar-kill-2", [*args, "--monitor", monitor.url], tmp_path) as second:
        counts = wait_for_records(monitor.url, model, 30)
        replayed = second.metric("driftloop_records_replayed_total")
    assert counts["records_by_version"] == {"v1": {"champion": 30}}
    assert replayed == 30


def test_a_monitor_outage_under_traffic_loses_nothing_and_slows_nobody(
    bentos: Bentos, monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-outage"
    args = ["--model", model, "--champion", bentos.champion.url, "--champion-version", "v1",
            "--monitor", monitor.url, "--spool-dir", str(tmp_path / "spool")]  # fmt: skip
    try:
        with SidecarProcess("sidecar-outage", args, tmp_path) as sidecar:
            traffic = Traffic(sidecar.url, bentos.features)
            traffic.start()
            time.sleep(1.5)
            down = time.perf_counter()
            monitor.stop(signal.SIGKILL)
            time.sleep(3.0)
            up = time.perf_counter()
            monitor.start()  # same port, same database
            time.sleep(1.0)
            traffic.stop.set()
            traffic.join()
            sent_rows = sum(r[3] for r in traffic.results)
            counts = wait_for_records(monitor.url, model, sent_rows)
            spooled = sidecar.metric("driftloop_records_spooled_total")
            dropped = sidecar.metric("driftloop_records_dropped_total")
    finally:
        if monitor.process is None:
            monitor.start()  # leave the shared monitor up for whoever comes next
    assert {r[1] for r in traffic.results} == {200}
    assert counts["record_count"] == sent_rows
    assert spooled > 0
    assert dropped == 0
    before = statistics.median(traffic.latencies(0, down))
    during = statistics.median(traffic.latencies(down, up))
    assert during < 2 * before + 0.005, (before, during)


def test_the_sidecar_follows_a_rollout_started_and_promoted_on_the_real_monitor(
    monitor: MonitorProcess, tmp_path: Path
) -> None:
    model = "iris-rollout"
    body = {"inputs": [{"a": 1.0}]}
    with ServerThread(model_app("champ")) as v1, ServerThread(model_app("chall")) as v2:
        registered = httpx.post(f"{monitor.url}/v1/models", json={"name": model, "versions": [
            {"version": "v1", "role": "champion", "url": v1.url},
            {"version": "v2", "role": "challenger", "url": v2.url},
        ]})  # fmt: skip
        assert registered.status_code == 201, registered.text
        args = ["--model", model, "--champion", v1.url, "--champion-version", "v1",
                "--monitor", monitor.url]  # fmt: skip
        with SidecarProcess("sidecar-rollout", args, tmp_path) as sidecar, httpx.Client() as client:

            def answers() -> set[tuple[str, str]]:
                out = set()
                for _ in range(4):
                    response = client.post(f"{sidecar.url}/predict", json=body)
                    variant = response.headers["x-driftloop-variant"]
                    out.add((variant, response.json()[0]["prediction"]))
                return out

            def act(action: dict[str, str]) -> int:
                response = httpx.post(f"{monitor.url}/v1/models/{model}/rollout", json=action)
                assert response.status_code == 200, response.text
                revision: int = httpx.get(f"{monitor.url}/v1/models/{model}/routing").json()[
                    "revision"
                ]
                deadline = time.monotonic() + 10
                while sidecar.metric("driftloop_sidecar_policy_revision") != revision:
                    assert time.monotonic() < deadline, "the sidecar did not pick up the policy"
                    time.sleep(0.2)
                return revision

            assert answers() == {("champion", "champ")}
            act({"action": "start", "version": "v2"})  # the first step of a rollout: shadow
            assert answers() == {("champion", "champ")}
            counts = wait_for_records(monitor.url, model, 12)
            assert counts["records_by_version"] == {"v1": {"champion": 8}, "v2": {"shadow": 4}}
            act({"action": "promote"})  # v2 is the champion now: every answer comes from it
            assert answers() == {("champion", "chall")}
