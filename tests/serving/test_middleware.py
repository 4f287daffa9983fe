"""``DriftloopMiddleware`` on a real ASGI app served on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.middleware import Middleware

from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.middleware import DriftloopMiddleware
from driftloop.serving.shipper import Shipper
from driftloop.serving.spool import MemorySpool
from driftloop.settings import CaptureSettings
from tests.serving.servers import ServerThread, model_app
from tests.serving.test_shipper import RecordingSink, wait_for


@pytest.fixture
def served() -> Iterator[tuple[str, RecordingSink, CollectorRegistry]]:
    registry = CollectorRegistry()
    sink = RecordingSink()
    shipper = Shipper("iris", sink, MemorySpool(), ShippingMetrics(registry),
                      CaptureSettings(batch_age_seconds=0.05, queue_size=100))  # fmt: skip
    app = model_app("inproc")
    app.user_middleware.insert(
        0, Middleware(DriftloopMiddleware, model="iris", version="v3", shipper=shipper)
    )
    with ServerThread(app) as server:
        yield server.url, sink, registry


def test_predictions_are_captured_and_the_request_id_returned(
    served: tuple[str, RecordingSink, CollectorRegistry],
) -> None:
    url, sink, _ = served
    response = httpx.post(
        f"{url}/predict", json={"inputs": [{"a": 1}]}, headers={"X-Request-ID": "m1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "m1"
    minted = httpx.post(f"{url}/predict", json={"inputs": [{"a": 2}, {"a": 3}]}).headers[
        "x-request-id"
    ]
    wait_for(lambda: len(sink.ids()) == 3)
    records = [r for b in sink.batches for r in b["records"]]
    got = [
        (r["request_id"], r["version"], r["variant"], r["outputs"]["prediction"]) for r in records
    ]
    assert got == [
        ("m1", "v3", "champion", "inproc"),
        (f"{minted}-0", "v3", "champion", "inproc"),
        (f"{minted}-1", "v3", "champion", "inproc"),
    ]  # fmt: skip


def test_other_requests_pass_untouched_but_get_a_request_id(
    served: tuple[str, RecordingSink, CollectorRegistry],
) -> None:
    url, sink, _ = served
    with httpx.stream("GET", f"{url}/stream") as response:
        assert "".join(response.iter_text()).startswith("chunk-0;")
    assert len(response.headers["x-request-id"]) == 32
    assert sink.ids() == []


def test_a_crashing_sink_never_fails_a_request(
    served: tuple[str, RecordingSink, CollectorRegistry],
) -> None:
    url, sink, registry = served
    sink.fail = True
    for _ in range(5):
        assert httpx.post(f"{url}/predict", json={"inputs": [{"a": 1}]}).status_code == 200
    name, labels = "driftloop_records_spooled_total", {"model": "iris"}
    wait_for(lambda: (registry.get_sample_value(name, labels) or 0) > 0)
