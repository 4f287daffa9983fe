"""The proxy against real upstreams on loopback: forwarding, ids, errors, shadow copies."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from driftloop.serving.metrics import ProxyMetrics, ShippingMetrics
from driftloop.serving.proxy import ProxyApp
from driftloop.serving.routing import Mode, RoutingPolicy, Upstream
from driftloop.serving.shipper import Shipper
from driftloop.serving.spool import MemorySpool
from driftloop.settings import CaptureSettings
from tests.procs import free_port
from tests.serving.servers import ServerThread, model_app
from tests.serving.test_shipper import RecordingSink, wait_for

ROWS = {"inputs": [{"a": 1.0}, {"a": 2.0}]}


@pytest.fixture(scope="module")
def champion() -> Iterator[ServerThread]:
    with ServerThread(model_app("champ")) as server:
        yield server


class Held(ServerThread):
    """An upstream that answers nothing until the test calls :meth:`release`."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        super().__init__(model_app("slow", hold=self.gate))

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def slow_challenger() -> Iterator[Held]:
    server = Held()
    with server:
        try:
            yield server
        finally:
            server.release()


class Proxy:
    """A ProxyApp served on loopback, with its registry and the records it shipped."""

    def __init__(self, policy: RoutingPolicy, queue_size: int = 10_000, **options: Any) -> None:
        self.registry = CollectorRegistry()
        self.start_shipper = queue_size == 10_000
        self.sink = RecordingSink()
        self.shipper = Shipper(
            "iris",
            self.sink,
            MemorySpool(queue_size),
            ShippingMetrics(self.registry),
            CaptureSettings(batch_records=50, batch_age_seconds=0.05, queue_size=queue_size),
        )
        self.app = ProxyApp("iris", policy, self.shipper, ProxyMetrics(self.registry), **options)
        self.server = ServerThread(self.app)
        self.url = self.server.url

    def __enter__(self) -> Proxy:
        if self.start_shipper:  # a small queue stays unstarted, so it fills up
            self.shipper.start()
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)
        self.shipper.stop()

    def records(self) -> list[dict[str, Any]]:
        return [r for b in self.sink.batches for r in b["records"]]

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"model": "iris", **labels}) or 0.0


def single(url: str) -> RoutingPolicy:
    return RoutingPolicy(Mode.single, Upstream("v1", url))


def test_requests_are_forwarded_unchanged_except_hop_by_hop_headers(champion: ServerThread) -> None:
    with Proxy(single(champion.url)) as proxy:
        response = httpx.post(
            f"{proxy.url}/echo/a/b?x=1&y=%20",
            content=b"hello",
            headers={
                "X-Request-ID": "client-id-1",
                "X-Custom": "kept",
                "TE": "trailers",
                "Proxy-Authorization": "Basic eA==",
            },
        )
    assert response.status_code == 418
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["query"], echoed["body"]) == (
        "POST", "/echo/a/b", "x=1&y=%20", "hello"
    )  # fmt: skip
    sent = dict(echoed["headers"])
    assert sent["x-custom"] == "kept"
    assert sent["x-request-id"] == "client-id-1"
    assert "te" not in sent
    assert "proxy-authorization" not in sent
    assert response.headers["x-request-id"] == "client-id-1"
    assert response.headers["x-driftloop-variant"] == "champion"
    assert response.headers["x-upstream"] == "champ"


@pytest.mark.parametrize(
    "incoming", [None, "has space", "x" * 300], ids=["absent", "spaces", "long"]
)
def test_a_request_id_is_minted_when_absent_or_unusable(
    champion: ServerThread, incoming: str | None
) -> None:
    headers = {"X-Request-ID": incoming} if incoming else {}
    with Proxy(single(champion.url)) as proxy:
        response = httpx.post(f"{proxy.url}/predict", json=ROWS, headers=headers)
        wait_for(lambda: len(proxy.records()) == 2)
    minted = response.headers["x-request-id"]
    assert len(minted) == 32
    assert minted != incoming
    assert [r["request_id"] for r in proxy.records()] == [f"{minted}-0", f"{minted}-1"]


def test_a_streaming_response_streams_through(champion: ServerThread) -> None:
    with (
        Proxy(single(champion.url)) as proxy,
        httpx.stream("GET", f"{proxy.url}/stream") as response,
    ):
        chunks = list(response.iter_text())
    assert "".join(chunks) == "".join(f"chunk-{i};" for i in range(5))


def test_predictions_are_captured_with_version_and_variant(champion: ServerThread) -> None:
    with Proxy(single(champion.url)) as proxy:
        response = httpx.post(f"{proxy.url}/predict", json=ROWS, headers={"X-Request-ID": "r1"})
        assert response.status_code == 200
        wait_for(lambda: len(proxy.records()) == 2)
        records = proxy.records()
        assert proxy.value("driftloop_sidecar_requests_total", variant="champion", code="200") == 1
    got = [
        (r["request_id"], r["version"], r["variant"], r["outputs"]["prediction"]) for r in records
    ]
    assert got == [
        ("r1-0", "v1", "champion", "champ"),
        ("r1-1", "v1", "champion", "champ"),
    ]  # fmt: skip


def test_an_unreachable_upstream_is_a_counted_502_with_a_json_message() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with Proxy(single(dead)) as proxy:
        response = httpx.post(f"{proxy.url}/predict", json=ROWS)
        assert response.status_code == 502
        assert response.json()["error"].startswith("upstream unreachable")
        assert (
            proxy.value(
                "driftloop_sidecar_upstream_errors_total", variant="champion", reason="connect"
            )
            == 1
        )
        wait_for(lambda: len(proxy.records()) == 2)
    assert {r["status"] for r in proxy.records()} == {502}


def test_a_slow_upstream_is_a_counted_504(slow_challenger: Held) -> None:
    with Proxy(single(slow_challenger.url), read_timeout=0.3) as proxy:
        response = httpx.post(f"{proxy.url}/predict", json=ROWS)
        assert response.status_code == 504
        assert response.json()["error"].startswith("upstream timed out")
        assert (
            proxy.value(
                "driftloop_sidecar_upstream_errors_total", variant="champion", reason="timeout"
            )
            == 1
        )


def test_a_slow_shadow_never_slows_the_client_and_pairs_by_request_id(
    champion: ServerThread, slow_challenger: Held
) -> None:
    policy = RoutingPolicy(
        Mode.shadow, Upstream("v1", champion.url), Upstream("v2", slow_challenger.url)
    )
    with Proxy(policy) as proxy:
        # The challenger answers nothing until released: three answers before that mean
        # nobody waited for the shadow copies, however slow the machine.
        for i in range(3):
            response = httpx.post(
                f"{proxy.url}/predict", json=ROWS, headers={"X-Request-ID": f"s{i}"}
            )
            assert response.json()[0]["prediction"] == "champ"
            assert response.headers["x-driftloop-variant"] == "champion"
        slow_challenger.release()
        wait_for(lambda: len(proxy.records()) == 12)
    pairs = {(r["request_id"], r["variant"], r["version"]) for r in proxy.records()}
    for i in range(3):
        for row in range(2):
            assert {(f"s{i}-{row}", "champion", "v1"), (f"s{i}-{row}", "shadow", "v2")} <= pairs


def test_shadow_copies_beyond_the_limit_are_dropped_and_counted(
    champion: ServerThread, slow_challenger: Held
) -> None:
    policy = RoutingPolicy(
        Mode.shadow, Upstream("v1", champion.url), Upstream("v2", slow_challenger.url)
    )
    with Proxy(policy, shadow_concurrency=2) as proxy:
        for _ in range(6):  # the first two copies stay in flight until the release
            assert httpx.post(f"{proxy.url}/predict", json=ROWS).status_code == 200
        assert proxy.value("driftloop_sidecar_shadow_requests_total", outcome="dropped") == 4
        slow_challenger.release()
        wait_for(lambda: proxy.value("driftloop_sidecar_shadow_requests_total", outcome="ok") == 2)


def test_a_failing_shadow_never_fails_the_client(champion: ServerThread) -> None:
    with ServerThread(model_app("broken", fail=True)) as broken:
        policy = RoutingPolicy(
            Mode.shadow, Upstream("v1", champion.url), Upstream("v2", broken.url)
        )
        with Proxy(policy) as proxy:
            response = httpx.post(f"{proxy.url}/predict", json=ROWS)
            assert response.status_code == 200
            wait_for(
                lambda: proxy.value("driftloop_sidecar_shadow_requests_total", outcome="error") == 1
            )


def test_a_full_capture_queue_never_fails_a_request_and_counts_the_drop(
    champion: ServerThread,
) -> None:
    with Proxy(single(champion.url), queue_size=3) as proxy:
        statuses = [httpx.post(f"{proxy.url}/predict", json=ROWS).status_code for _ in range(7)]
        assert statuses == [200] * 7
        assert proxy.value("driftloop_records_dropped_total", reason="queue_full") == 4


def test_ab_by_a_json_field_is_sticky_per_customer(champion: ServerThread) -> None:
    with ServerThread(model_app("chall")) as challenger:
        policy = RoutingPolicy(
            Mode.ab,
            Upstream("v1", champion.url),
            Upstream("v2", challenger.url),
            weight=0.5,
            sticky_key="json:customer_id",
        )
        seen: dict[str, set[str]] = {}
        with Proxy(policy) as proxy:
            for _ in range(3):
                for customer in range(12):
                    body = {"inputs": [{"a": 1.0, "customer_id": f"c{customer}"}]}
                    response = httpx.post(f"{proxy.url}/predict", json=body)
                    answer = response.json()[0]["prediction"]
                    variant = response.headers["x-driftloop-variant"]
                    assert answer == {"champion": "champ", "challenger": "chall"}[variant]
                    seen.setdefault(f"c{customer}", set()).add(variant)
    assert all(len(v) == 1 for v in seen.values())
    assert set().union(*seen.values()) == {"champion", "challenger"}


def test_a_body_over_the_capture_limit_streams_through_uncaptured(champion: ServerThread) -> None:
    big = b'{"inputs": [' + b",".join([b'{"a": 1.0}'] * 30_000) + b"]}"
    with Proxy(single(champion.url), max_capture_bytes=10_000) as proxy:
        response = httpx.post(
            f"{proxy.url}/echo/big", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 418
        assert response.json()["body"].encode() == big
        assert proxy.value("driftloop_records_dropped_total", reason="too_large") == 1


def test_a_client_that_leaves_mid_body_is_not_forwarded(champion: ServerThread) -> None:
    with Proxy(single(champion.url)) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.server.port)) as sock:
            sock.sendall(
                b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b'{"inputs": ['
            )
        time.sleep(0.3)
        assert httpx.post(f"{proxy.url}/predict", json=ROWS).status_code == 200
        assert proxy.value("driftloop_sidecar_requests_total", variant="champion", code="418") == 0
        assert proxy.value("driftloop_sidecar_requests_total", variant="champion", code="200") == 1
