"""Where batches wait while the monitor is unreachable: on disk, or in memory.

The disk spool is a directory of append-only segment files. Each entry is framed as
``length, crc32, records`` (big-endian) followed by the gzip batch, written and fsynced before
``append`` returns, so a ``kill -9`` loses nothing the spool acknowledged; a torn entry at the
tail (a crash mid-write) fails its CRC and is cut off at open. A small ``cursor`` file, replaced
atomically, marks the first entry not yet acknowledged by the monitor, so replay resumes in order
after a restart. Beyond ``max_bytes`` the oldest segment is evicted and its records reported.

Several processes (BentoML workers) may share one directory: each claims a ``slot-N`` with an
exclusive ``flock`` and a restarted worker takes over a free slot, spool included.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

__all__ = ["DiskSpool", "MemorySpool", "Spool"]

_HEADER = struct.Struct(">IIi")


class Spool(Protocol):
    """A FIFO of gzip batches with their record counts."""

    durable: bool

    @property
    def size_bytes(self) -> int:
        """Bytes waiting."""
        ...

    @property
    def records(self) -> int:
        """Records waiting."""
        ...

    def append(self, payload: bytes, records: int) -> int:
        """Store a batch durably; return how many records older batches lost to eviction."""
        ...

    def peek(self) -> tuple[bytes, int] | None:
        """The oldest batch and its record count, without removing it."""
        ...

    def pop(self) -> None:
        """Remove the batch :meth:`peek` returned (it was acknowledged)."""
        ...

    def close(self) -> None:
        """Release files and locks."""
        ...


class MemorySpool:
    """A bounded in-memory FIFO: survives monitor outages, not process restarts."""

    durable = False

    def __init__(self, max_batches: int = 1000) -> None:
        self._items: deque[tuple[bytes, int]] = deque()
        self._max = max_batches
        self._bytes = 0
        self._records = 0

    @property
    def size_bytes(self) -> int:
        """Bytes waiting."""
        return self._bytes

    @property
    def records(self) -> int:
        """Records waiting."""
        return self._records

    def append(self, payload: bytes, records: int) -> int:
        """Keep a batch; evict the oldest beyond ``max_batches``."""
        evicted = 0
        while len(self._items) >= self._max:
            old, count = self._items.popleft()
            self._bytes -= len(old)
            self._records -= count
            evicted += count
        self._items.append((payload, records))
        self._bytes += len(payload)
        self._records += records
        return evicted

    def peek(self) -> tuple[bytes, int] | None:
        """The oldest batch."""
        return self._items[0] if self._items else None

    def pop(self) -> None:
        """Drop the oldest batch."""
        payload, count = self._items.popleft()
        self._bytes -= len(payload)
        self._records -= count

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int
    records: int


class DiskSpool:
    """Append-only segment files with fsync, an atomic cursor and oldest-first eviction."""

    durable = True

    def __init__(
        self, directory: str | Path, max_bytes: int = 256 << 20, segment_bytes: int = 4 << 20
    ) -> None:
        self.root = Path(directory)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock_file = self._claim_slot()
        self.dir = self.root / Path(self._lock_file.name).stem
        self.dir.mkdir(exist_ok=True)
        self._segments: list[_Segment] = []
        self._head_offset = 0
        self._tail: IO[bytes] | None = None
        self._load()

    def _claim_slot(self) -> IO[bytes]:
        for index in range(1024):
            handle = (self.root / f"slot-{index}.lock").open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return handle
        raise RuntimeError(f"no free spool slot in {self.root}")

    # -- opening ----------------------------------------------------------------------------
    def _load(self) -> None:
        paths = sorted(self.dir.glob("seg-*.log"))
        head_seq, head_offset = self._read_cursor()
        for path in paths:
            seq = int(path.stem.split("-")[1])
            if seq < head_seq:
                path.unlink()
                continue
            start = head_offset if seq == head_seq else 0
            size, records = self._scan(path, start)
            self._segments.append(_Segment(seq, path, size, records))
        if self._segments and self._segments[0].seq == head_seq:
            self._head_offset = min(head_offset, self._segments[0].size)

    def _scan(self, path: Path, start: int) -> tuple[int, int]:
        """Valid size of ``path`` (torn tail cut off) and records after ``start``."""
        records = 0
        offset = 0
        with path.open("r+b") as handle:
            while True:
                header = handle.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                length, crc, count = _HEADER.unpack(header)
                payload = handle.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                if offset >= start:
                    records += count
                offset += _HEADER.size + length
            handle.truncate(offset)
        return offset, records

    def _read_cursor(self) -> tuple[int, int]:
        try:
            seq, offset = (self.dir / "cursor").read_text().split()
            return int(seq), int(offset)
        except (OSError, ValueError):
            return 0, 0

    def _write_cursor(self, seq: int, offset: int) -> None:
        tmp = self.dir / "cursor.tmp"
        with tmp.open("w") as handle:
            handle.write(f"{seq} {offset}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.dir / "cursor")

    # -- the FIFO ---------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        """Bytes waiting (unacknowledged part of every segment)."""
        return sum(s.size for s in self._segments) - self._head_offset

    @property
    def records(self) -> int:
        """Records waiting."""
        return sum(s.records for s in self._segments)

    def append(self, payload: bytes, records: int) -> int:
        """Write and fsync one entry; evict the oldest segments beyond ``max_bytes``."""
        entry = _HEADER.pack(len(payload), zlib.crc32(payload), records) + payload
        if not self._segments or self._segments[-1].size + len(entry) > self.segment_bytes:
            self._roll()
        tail = self._segments[-1]
        if self._tail is None:  # reopened after a restart: append to the last segment
            self._tail = tail.path.open("ab")
        self._tail.write(entry)
        self._tail.flush()
        os.fsync(self._tail.fileno())
        tail.size += len(entry)
        tail.records += records
        evicted = 0
        while self.size_bytes > self.max_bytes and len(self._segments) > 1:
            evicted += self._drop_head()
        return evicted

    def _roll(self) -> None:
        if self._tail is not None:
            self._tail.close()
        seq = self._segments[-1].seq + 1 if self._segments else self._read_cursor()[0] + 1
        path = self.dir / f"seg-{seq:012d}.log"
        self._tail = path.open("ab")
        self._sync_dir()
        self._segments.append(_Segment(seq, path, 0, 0))
        if len(self._segments) == 1:
            self._head_offset = 0
            self._write_cursor(seq, 0)

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _drop_head(self) -> int:
        head = self._segments.pop(0)
        if not self._segments and self._tail is not None:
            self._tail.close()
            self._tail = None
        head.path.unlink(missing_ok=True)
        self._head_offset = 0
        if self._segments:
            self._write_cursor(self._segments[0].seq, 0)
        return head.records

    def peek(self) -> tuple[bytes, int] | None:
        """The oldest unacknowledged entry."""
        while self._segments:
            head = self._segments[0]
            if self._head_offset < head.size:
                with head.path.open("rb") as handle:
                    handle.seek(self._head_offset)
                    length, _crc, count = _HEADER.unpack(handle.read(_HEADER.size))
                    return handle.read(length), count
            if len(self._segments) == 1:
                return None
            self._drop_head()
        return None

    def pop(self) -> None:
        """Acknowledge the entry :meth:`peek` returned: move the cursor past it."""
        entry = self.peek()
        if entry is None:
            return
        payload, count = entry
        head = self._segments[0]
        self._head_offset += _HEADER.size + len(payload)
        head.records -= count
        if self._head_offset >= head.size and len(self._segments) > 1:
            self._drop_head()
        elif self._head_offset >= head.size:
            # Everything acknowledged: start afresh rather than keep an empty segment around.
            self._drop_head()
            self._write_cursor(head.seq, 0)
        else:
            self._write_cursor(head.seq, self._head_offset)

    def close(self) -> None:
        """Close the tail and release the slot."""
        if self._tail is not None:
            self._tail.close()
            self._tail = None
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()
