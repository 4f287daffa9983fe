"""Spools: the same FIFO contract for memory and disk; the disk one survives crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driftloop.serving.spool import DiskSpool, MemorySpool, Spool

SpoolFactory = Callable[[], Spool]


@pytest.fixture(params=["memory", "disk"])
def make_spool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpoolFactory]:
    """Makes spools of one kind, bounded to about 3 entries of 100 bytes."""
    made: list[Spool] = []

    def factory() -> Spool:
        spool: Spool
        if request.param == "memory":
            spool = MemorySpool(max_batches=3)
        else:
            spool = DiskSpool(tmp_path / "spool", max_bytes=350, segment_bytes=120)
        made.append(spool)
        return spool

    yield factory
    for spool in made:
        spool.close()


def test_batches_come_back_in_order_with_their_counts(make_spool: SpoolFactory) -> None:
    spool = make_spool()
    assert spool.peek() is None
    for i in range(3):
        assert spool.append(bytes([i]) * 100, i + 1) == 0
    assert spool.records == 6
    seen = []
    while (entry := spool.peek()) is not None:
        seen.append((entry[0][:1], entry[1]))
        spool.pop()
    assert seen == [(b"\x00", 1), (b"\x01", 2), (b"\x02", 3)]
    assert (spool.records, spool.size_bytes) == (0, 0)


def test_the_oldest_batches_are_evicted_and_reported(make_spool: SpoolFactory) -> None:
    spool = make_spool()
    evicted = sum(spool.append(bytes([i]) * 100, 10) for i in range(5))
    assert evicted == 20
    assert spool.records == 30
    entry = spool.peek()
    assert entry is not None
    assert entry[0][:1] == b"\x02"


def test_a_disk_spool_resumes_after_a_restart_where_it_stopped(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=250)
    for i in range(5):
        spool.append(bytes([i]) * 100, 1)
    spool.pop()
    spool.pop()
    spool.close()
    again = DiskSpool(tmp_path, segment_bytes=250)
    assert again.records == 3
    order = []
    while (entry := again.peek()) is not None:
        order.append(entry[0][0])
        again.pop()
    assert order == [2, 3, 4]
    again.append(b"new", 1)
    assert again.peek() == (b"new", 1)
    again.close()


def test_a_torn_entry_at_the_tail_is_cut_off(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(b"a" * 50, 1)
    spool.append(b"b" * 50, 2)
    segment = next((tmp_path / "slot-0").glob("seg-*.log"))
    spool.close()
    with segment.open("r+b") as handle:  # a crash in the middle of the second write
        handle.truncate(segment.stat().st_size - 10)
    again = DiskSpool(tmp_path)
    assert again.records == 1
    assert again.peek() == (b"a" * 50, 1)
    again.close()


def test_two_processes_sharing_a_directory_get_separate_slots(tmp_path: Path) -> None:
    first, second = DiskSpool(tmp_path), DiskSpool(tmp_path)
    first.append(b"one", 1)
    second.append(b"two", 1)
    assert (first.dir.name, second.dir.name) == ("slot-0", "slot-1")
    assert (first.peek(), second.peek()) == ((b"one", 1), (b"two", 1))
    first.close()
    second.close()


def test_sigkill_loses_nothing_the_spool_acknowledged(tmp_path: Path) -> None:
    writer = textwrap.dedent(
        f"""
        import sys
        from driftloop.serving.spool import DiskSpool
        spool = DiskSpool({str(tmp_path)!r}, segment_bytes=4096)
        i = 0
        while True:
            spool.append(i.to_bytes(4, "big") * 64, 1)
            print(i, flush=True)  # acknowledged: append returned after fsync
            i += 1
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 30
    while acknowledged < 200 and time.monotonic() < deadline:
        acknowledged = int(process.stdout.readline())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for line in process.stdout:  # acknowledgements still in the pipe count too
        acknowledged = max(acknowledged, int(line))
    process.stdout.close()
    spool = DiskSpool(tmp_path, segment_bytes=4096)
    values = []
    while (entry := spool.peek()) is not None:
        values.append(int.from_bytes(entry[0][:4], "big"))
        spool.pop()
    spool.close()
    assert values[: acknowledged + 1] == list(range(acknowledged + 1))
