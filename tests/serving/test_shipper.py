"""The shipper: batches, a full queue, a crashing sink, rejected records, ordered replay."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftloop.serving.capture import Captured
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.shipper import Shipper
from driftloop.serving.sink import Outcome
from driftloop.serving.spool import DiskSpool, MemorySpool
from driftloop.settings import CaptureSettings


class RecordingSink:
    """A sink that keeps what it is given; ``fail`` makes it raise (a crashing sink)."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.fail = False
        self.reject_ids: set[str] = set()
        self.lock = threading.Lock()

    def send(self, payload: bytes) -> Outcome:
        if self.fail:
            raise RuntimeError("sink crashed")
        batch = json.loads(gzip.decompress(payload))
        if any(r["request_id"] in self.reject_ids for r in batch["records"]):
            return Outcome("reject", "HTTP 422")
        with self.lock:
            self.batches.append(batch)
        return Outcome("ok")

    def ids(self) -> list[str]:
        with self.lock:
            return [r["request_id"] for b in self.batches for r in b["records"]]

    def close(self) -> None:
        return None


def item(i: int) -> Captured:
    return Captured(
        "iris",
        "v1",
        "champion",
        f"r{i}",
        datetime(2026, 1, 1, tzinfo=UTC),
        json.dumps({"inputs": [{"a": i}]}).encode(),
        b'[{"prediction": 1}]',
        200,
        1.0,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def make(
    sink: RecordingSink, registry: CollectorRegistry, spool: Any = None, **settings: Any
) -> Shipper:
    options = {"batch_records": 10, "batch_age_seconds": 0.05, "backoff_base_seconds": 0.05,
               "backoff_max_seconds": 0.1, **settings}  # fmt: skip
    return Shipper(
        "iris", sink, spool or MemorySpool(), ShippingMetrics(registry), CaptureSettings(**options)
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"model": "iris", **labels}) or 0.0


@pytest.fixture
def shipper(sink: RecordingSink, registry: CollectorRegistry) -> Iterator[Shipper]:
    s = make(sink, registry)
    s.start()
    yield s
    s.stop()


def test_records_are_shipped_in_batches_in_order(
    shipper: Shipper, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    for i in range(35):
        assert shipper.offer(item(i))
    wait_for(lambda: len(sink.ids()) == 35)
    assert sink.ids() == [f"r{i}" for i in range(35)]
    assert max(len(b["records"]) for b in sink.batches) <= 10
    assert value(registry, "driftloop_records_captured_total") == 35
    assert value(registry, "driftloop_records_sent_total") == 35


def test_a_full_memory_spool_drops_and_counts_without_raising(
    sink: RecordingSink, registry: CollectorRegistry
) -> None:
    shipper = make(sink, registry, spool=MemorySpool(5))  # not started: nothing drains it
    results = [shipper.offer(item(i)) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert value(registry, "driftloop_records_dropped_total", reason="queue_full") == 3
    assert value(registry, "driftloop_records_captured_total") == 3  # the sums close


def test_a_crashing_sink_keeps_records_in_the_log_and_replays_them_in_order(
    tmp_path: Path, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    shipper = make(sink, registry, spool=DiskSpool(tmp_path))
    shipper.start()
    try:
        sink.fail = True
        for i in range(30):
            shipper.offer(item(i))
        wait_for(lambda: value(registry, "driftloop_records_spooled_total") > 0)
        sink.fail = False
        wait_for(lambda: len(sink.ids()) == 30)
        wait_for(lambda: shipper.spool.size_bytes == 0)
    finally:
        shipper.stop()
    assert sink.ids() == [f"r{i}" for i in range(30)]
    assert value(registry, "driftloop_records_replayed_total") == 30
    assert value(registry, "driftloop_records_spooled_total") == 30
    assert value(registry, "driftloop_records_sent_total") == 30
    assert value(registry, "driftloop_records_captured_total") == 30


def test_a_rejected_record_is_isolated_and_the_rest_delivered(
    shipper: Shipper, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    sink.reject_ids = {"r3"}
    for i in range(10):
        shipper.offer(item(i))
    wait_for(lambda: len(sink.ids()) == 9)
    assert sorted(sink.ids()) == sorted(f"r{i}" for i in range(10) if i != 3)
    assert value(registry, "driftloop_records_dropped_total", reason="rejected") == 1


def test_a_body_that_cannot_be_parsed_is_counted(
    shipper: Shipper, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    bad = Captured(
        "iris", "v1", "champion", "x", datetime(2026, 1, 1, tzinfo=UTC), b"{", b"", 200, 1.0
    )
    shipper.offer(bad)
    shipper.offer(item(1))
    wait_for(lambda: sink.ids() == ["r1"])
    assert value(registry, "driftloop_records_dropped_total", reason="not_json") == 1
    assert value(registry, "driftloop_records_captured_total") == 2  # sent 1 + dropped 1


def test_what_the_monitor_did_not_take_before_a_stop_is_sent_by_the_next_process(
    tmp_path: Path, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    sink.fail = True
    first = make(sink, registry, spool=DiskSpool(tmp_path))
    first.start()
    for i in range(12):
        first.offer(item(i))
    first.stop()
    sink.fail = False
    second = make(sink, CollectorRegistry(), spool=DiskSpool(tmp_path))
    second.start()
    try:
        wait_for(lambda: len(sink.ids()) == 12)
    finally:
        second.stop()
    assert sink.ids() == [f"r{i}" for i in range(12)]


def test_records_evicted_from_a_full_log_are_counted_and_the_sums_close(
    tmp_path: Path, sink: RecordingSink, registry: CollectorRegistry
) -> None:
    sink.fail = True
    spool = DiskSpool(tmp_path, max_bytes=4000, segment_bytes=1000)
    shipper = make(sink, registry, spool=spool)
    shipper.start()
    try:
        for i in range(100):
            shipper.offer(item(i))
        wait_for(
            lambda: value(registry, "driftloop_records_dropped_total", reason="spool_full") > 0
        )
        sink.fail = False
        wait_for(lambda: spool.size_bytes == 0)
        wait_for(
            lambda: (
                value(registry, "driftloop_records_sent_total")
                + value(registry, "driftloop_records_dropped_total", reason="spool_full")
                == 100
            )
        )
    finally:
        shipper.stop()
    delivered = sink.ids()
    assert len(delivered) == len(set(delivered))
    dropped = value(registry, "driftloop_records_dropped_total", reason="spool_full")
    assert len(delivered) + dropped == 100
    assert value(registry, "driftloop_records_captured_total") == 100
