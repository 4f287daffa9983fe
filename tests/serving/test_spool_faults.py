"""The capture log on a real full disk: a 1 MiB tmpfs filled, freed and reopened, with the sums
checked every time: every record offered is delivered once or counted under a named reason, and
``sent + dropped = captured``. Needs root to mount the tmpfs (required under CI)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from driftloop.serving.capture import Captured
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.shipper import Shipper
from driftloop.serving.spool import DiskSpool
from driftloop.settings import CaptureSettings
from tests.conftest import need
from tests.serving.test_shipper import RecordingSink, wait_for

REASONS = ("queue_full", "spool_full", "spool_torn", "spool_corrupt", "rejected", "shutdown")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    folder = tmp_path / "disk"
    folder.mkdir()
    need(os.geteuid() == 0, "mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    need(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def item(run: str, i: int) -> Captured:
    row = {"a": i, "text": "x" * 300}
    body = json.dumps({"inputs": [row]}).encode()
    return Captured(
        "iris", "v1", "champion", f"{run}-{i}", datetime.now(UTC), body,
        b'[{"prediction": 1}]', 200, 1.0,
    )  # fmt: skip


class Run:
    """One shipper process's worth: a shipper on the small disk and its counters."""

    def __init__(self, folder: Path, sink: RecordingSink, queue_size: int = 300) -> None:
        self.registry = CollectorRegistry()
        settings = CaptureSettings(
            batch_records=50, batch_age_seconds=0.05, backoff_base_seconds=0.05,
            backoff_max_seconds=0.1, queue_size=queue_size, segment_bytes=64 << 10,
        )  # fmt: skip
        self.spool = DiskSpool(folder, settings.spool_max_bytes, settings.segment_bytes)
        self.shipper = Shipper("iris", sink, self.spool, ShippingMetrics(self.registry), settings)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"model": "iris", **labels}) or 0.0

    def dropped(self) -> dict[str, float]:
        counts = {r: self.value("driftloop_records_dropped_total", reason=r) for r in REASONS}
        return {r: n for r, n in counts.items() if n}

    def sums(self) -> dict[str, Any]:
        return {
            "captured": self.value("driftloop_records_captured_total"),
            "sent": self.value("driftloop_records_sent_total"),
            "dropped": sum(self.dropped().values()),
        }

    def closes(self) -> bool:
        s = self.sums()
        return s["captured"] > 0 and s["sent"] + s["dropped"] == s["captured"]


def no_torn_entry_on_disk(folder: Path) -> None:
    from driftloop.serving.spool import _scan

    for segment in folder.glob("slot-*/seg-*.log"):
        data = segment.read_bytes()
        end = 0
        while True:
            found, after = _scan(data, end)
            if found < 0:
                break
            assert found == end, f"{segment}: bytes between entries at {end}"
            end = after
        assert end == len(data), f"{segment}: a torn entry at the tail"


def test_a_full_disk_then_freed_loses_nothing_silently_and_the_sums_close(
    small_disk: Path,
) -> None:
    sink = RecordingSink()
    sink.fail = True  # the monitor is down: everything has to wait on the 1 MiB disk
    run = Run(small_disk, sink)
    run.shipper.start()
    offered = [item("fill", i) for i in range(5000)]  # ~2 MiB of log
    try:
        accepted = [run.shipper.offer(x) for x in offered]
        assert run.value("driftloop_spool_write_errors_total") > 0  # the disk did fill up
        no_torn_entry_on_disk(small_disk)
        sink.fail = False  # the monitor is back: the log drains and frees the disk
        wait_for(lambda: run.spool.size_bytes == 0 and run.closes(), timeout=60)
        late = [run.shipper.offer(item("late", i)) for i in range(100)]  # room again
        wait_for(lambda: len(set(sink.ids())) == sum(accepted) + 100, timeout=30)
    finally:
        run.shipper.stop()
    assert all(late)
    assert run.value("driftloop_spool_write_errors_total") < 5000 + 100
    received = sink.ids()
    assert len(received) == len(set(received))  # none twice
    refused = accepted.count(False)
    assert run.dropped() == ({"queue_full": refused} if refused else {})
    assert set(received) == {
        x.request_id for x, ok in zip(offered, accepted, strict=True) if ok
    } | {f"late-{i}" for i in range(100)}
    assert run.sums() == {"captured": 5100, "sent": 5100 - refused, "dropped": refused}


def test_while_the_disk_is_full_records_are_still_sent_and_counted_sent(
    small_disk: Path,
) -> None:
    filler = small_disk / "filler"
    with filler.open("wb") as handle:  # another tenant took the whole disk
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    sink = RecordingSink()
    try:
        run = Run(small_disk, sink, queue_size=10_000)
    except OSError as exc:  # not even a cursor file fits: the disk is really full
        pytest.fail(f"the log could not even open on a full disk: {exc}")
    run.shipper.start()
    try:
        for i in range(400):
            assert run.shipper.offer(item("full", i))
        wait_for(lambda: run.value("driftloop_records_sent_total") == 400, timeout=30)
        assert run.value("driftloop_spool_write_errors_total") > 0
        filler.unlink()
        for i in range(400, 500):
            run.shipper.offer(item("full", i))
        wait_for(lambda: run.value("driftloop_records_sent_total") == 500, timeout=30)
    finally:
        run.shipper.stop()
    assert sorted(sink.ids()) == sorted(f"full-{i}" for i in range(500))
    assert run.sums() == {"captured": 500, "sent": 500, "dropped": 0}


def test_a_restart_on_a_full_log_with_a_torn_tail_delivers_the_rest_once_and_counts_the_tail(
    small_disk: Path,
) -> None:
    sink = RecordingSink()
    sink.fail = True
    first = Run(small_disk, sink)
    first.shipper.start()
    offered = [item("before", i) for i in range(3000)]
    accepted = [first.shipper.offer(x) for x in offered]
    first.shipper.stop()  # the monitor still down: what the log holds stays for the next one
    kept_in_memory_only = first.dropped().get("shutdown", 0)
    segments = sorted(small_disk.glob("slot-0/seg-*.log"))
    assert segments
    with segments[-1].open("ab") as handle:  # a crash in the middle of one more write
        handle.write(b"DL\x00\x00\x01\x00" + uuid.uuid4().bytes)
    sink.fail = False
    second = Run(small_disk, sink)
    second.shipper.start()
    try:
        wait_for(lambda: second.spool.size_bytes == 0 and second.closes(), timeout=60)
        time.sleep(0.1)
    finally:
        second.shipper.stop()
    assert second.dropped() == {"spool_torn": 1}
    received = sink.ids()
    assert len(received) == len(set(received))  # each record once, across both processes
    in_log = sum(accepted) - kept_in_memory_only
    assert len(received) == in_log
    assert first.value("driftloop_records_sent_total") == 0
    assert second.sums() == {"captured": in_log + 1, "sent": in_log, "dropped": 1}
    refused = accepted.count(False)
    assert first.dropped() == {
        k: v for k, v in {"queue_full": refused, "shutdown": kept_in_memory_only}.items() if v
    }
