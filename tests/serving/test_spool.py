"""Spools: the same contract for memory and the on-disk capture log; the log survives crashes,
checks every entry's CRC and cuts torn tails, counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftloop.serving.capture import Captured
from driftloop.serving.spool import DiskSpool, MemorySpool, Spool, SpoolFull, default_spool_dir

SpoolFactory = Callable[[], Spool]


def item(i: int, size: int = 20) -> Captured:
    return Captured(
        "iris",
        "v1",
        "champion",
        f"r{i}",
        datetime(2026, 1, 1, tzinfo=UTC),
        b'{"inputs": [{"a": %d}]}' % i + b" " * size,
        b'[{"prediction": 1}]',
        200,
        1.5,
        b"",
    )


def ids(spool: Spool, limit: int = 1000) -> list[str | None]:
    entries = spool.read(limit)
    if entries:
        spool.ack(entries[-1].end)
    return [e.item.request_id if e.item is not None else None for e in entries]


@pytest.fixture(params=["memory", "disk"])
def make_spool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpoolFactory]:
    made: list[Spool] = []

    def factory() -> Spool:
        spool: Spool
        if request.param == "memory":
            spool = MemorySpool(max_items=100)
        else:
            spool = DiskSpool(tmp_path / "spool", segment_bytes=400)
        made.append(spool)
        return spool

    yield factory
    for spool in made:
        spool.close()


def test_exchanges_come_back_whole_and_in_order(make_spool: SpoolFactory) -> None:
    spool = make_spool()
    assert spool.read(10) == []
    for i in range(12):
        spool.append(item(i))
    entries = spool.read(5)
    assert [e.item for e in entries] == [item(i) for i in range(5)]
    spool.ack(entries[-1].end)
    assert ids(spool) == [f"r{i}" for i in range(5, 12)]
    assert spool.read(10) == []
    assert spool.size_bytes == 0


def test_a_memory_spool_refuses_beyond_its_bound() -> None:
    spool = MemorySpool(max_items=2)
    spool.append(item(0))
    spool.append(item(1))
    with pytest.raises(SpoolFull, match="2 exchanges"):
        spool.append(item(2))


def test_the_log_resumes_after_a_restart_from_the_last_acknowledged_entry(
    tmp_path: Path,
) -> None:
    spool = DiskSpool(tmp_path, segment_bytes=400)
    for i in range(10):
        spool.append(item(i))
    entries = spool.read(4)
    spool.ack(entries[-1].end)
    spool.read(3)  # read but never acknowledged: sent again after the restart
    spool.close()
    again = DiskSpool(tmp_path, segment_bytes=400)
    assert again.backlog_at_open > 0
    assert ids(again) == [f"r{i}" for i in range(4, 10)]
    again.append(item(10))
    assert ids(again) == ["r10"]
    again.close()
    assert len(list((tmp_path / "slot-0").glob("seg-*.log"))) == 1  # acknowledged ones deleted


def test_a_torn_tail_is_cut_off_and_counted_when_the_log_is_opened(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(item(0))
    spool.append(item(1))
    spool.close()
    segment = next((tmp_path / "slot-0").glob("seg-*.log"))
    with segment.open("r+b") as handle:  # a crash in the middle of the second write
        handle.truncate(segment.stat().st_size - 10)
    again = DiskSpool(tmp_path)
    assert again.torn == 1
    assert ids(again) == ["r0"]
    again.append(item(2))  # appended right behind the valid part, not behind the torn bytes
    assert ids(again) == ["r2"]
    again.close()


def test_every_read_checks_the_crc_and_skips_only_the_damaged_entry(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(3):
        spool.append(item(i))
    segment = next((tmp_path / "slot-0").glob("seg-*.log"))
    data = bytearray(segment.read_bytes())
    middle = data.index(b"r1")
    data[middle + 1] ^= 0xFF  # one flipped bit-pattern inside the second entry
    segment.write_bytes(bytes(data))
    assert ids(spool) == ["r0", None, "r2"]
    spool.close()


def test_two_processes_sharing_a_folder_get_separate_slots(tmp_path: Path) -> None:
    first, second = DiskSpool(tmp_path), DiskSpool(tmp_path)
    first.append(item(1))
    second.append(item(2))
    assert (first.dir.name, second.dir.name) == ("slot-0", "slot-1")
    assert (ids(first), ids(second)) == (["r1"], ["r2"])
    first.close()
    second.close()


def test_beyond_its_size_the_log_evicts_the_oldest_segment_and_returns_its_unread_entries(
    tmp_path: Path,
) -> None:
    spool = DiskSpool(tmp_path, max_bytes=800, segment_bytes=400)
    for i in range(12):
        spool.append(item(i))
    evicted = spool.evict()
    assert evicted
    assert [e.item.request_id for e in evicted if e.item] == [f"r{i}" for i in range(len(evicted))]
    rest = ids(spool)
    assert rest == [f"r{i}" for i in range(len(evicted), 12)]
    spool.close()


def test_the_default_folder_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/var/lib/x")
    assert default_spool_dir("iris-8000") == Path("/var/lib/x/driftloop/spool/iris-8000")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "/home/u")
    assert default_spool_dir("a/b") == Path("/home/u/.local/state/driftloop/spool/a_b")


def test_sigkill_loses_nothing_that_was_appended_without_fsync(tmp_path: Path) -> None:
    writer = textwrap.dedent(
        f"""
        from datetime import UTC, datetime
        from driftloop.serving.capture import Captured
        from driftloop.serving.spool import DiskSpool
        spool = DiskSpool({str(tmp_path)!r}, segment_bytes=4096, fsync_seconds=3600)
        i = 0
        while True:
            spool.append(Captured("m", "v", "champion", str(i), datetime.now(UTC), b"{{}}" * 30,
                                  b"", 200, 1.0))
            print(i, flush=True)  # answered: the entry is in the page cache, never fsynced
            i += 1
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 30
    while acknowledged < 300 and time.monotonic() < deadline:
        acknowledged = int(process.stdout.readline())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for line in process.stdout:  # acknowledgements still in the pipe count too
        acknowledged = max(acknowledged, int(line))
    process.stdout.close()
    spool = DiskSpool(tmp_path, segment_bytes=4096)
    values = [int(r) for r in ids(spool, 100_000) if r is not None]
    spool.close()
    assert values[: acknowledged + 1] == list(range(acknowledged + 1))


def test_the_spool_is_on_disk_by_default_and_in_memory_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from driftloop.serving.spool import make_spool
    from driftloop.settings import CaptureSettings

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    spool = make_spool(CaptureSettings(), "iris-8000")
    assert isinstance(spool, DiskSpool)
    assert spool.dir == tmp_path / "driftloop" / "spool" / "iris-8000" / "slot-0"
    spool.close()
    assert isinstance(make_spool(CaptureSettings(memory_spool=True), "iris-8000"), MemorySpool)
    given = make_spool(CaptureSettings(spool_dir=str(tmp_path / "mine")), "iris-8000")
    assert isinstance(given, DiskSpool)
    assert given.root == tmp_path / "mine"
    given.close()


def test_a_restart_with_fewer_workers_takes_over_the_logs_of_the_missing_ones(
    tmp_path: Path,
) -> None:
    first, second = DiskSpool(tmp_path), DiskSpool(tmp_path)  # two workers
    first.append(item(1))
    second.append(item(2))
    second.append(item(3))
    first.close()  # both die; one worker comes back
    second.close()
    alone = DiskSpool(tmp_path)
    assert alone.dir.name == "slot-0"
    assert sorted(r for r in ids(alone) if r) == ["r1", "r2", "r3"]
    alone.close()
    assert not list((tmp_path / "slot-1").glob("seg-*.log"))
    again = DiskSpool(tmp_path)
    assert ids(again) == []  # taken over once, not twice
    again.close()


def test_a_live_workers_log_is_never_taken_over(tmp_path: Path) -> None:
    first, second = DiskSpool(tmp_path), DiskSpool(tmp_path)
    second.append(item(2))
    first.close()
    third = DiskSpool(tmp_path)  # slot-0 again; slot-1 is alive
    assert ids(third) == []
    assert ids(second) == ["r2"]
    third.close()
    second.close()
