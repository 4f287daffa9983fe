"""Where captured exchanges wait for the monitor: an on-disk log (the default) or memory.

**Crash safety.** The request path appends every captured exchange to the log with one
``write()`` *before* the last byte of the response goes out. Data in the page cache survives a
crash of the process (``SIGKILL``, OOM kill); ``fsync`` every ``fsync_seconds`` (from the
shipping thread, never the request path) covers power loss. The shipping thread reads the log
behind the writer, and :meth:`DiskSpool.ack` moves a cursor past what the monitor acknowledged;
after a restart on the same folder everything past the cursor is read again and resent, and the
monitor stores it once (records are idempotent on ``(request_id, variant)``).

**A log that never lies.** Each entry is framed as ``magic, length, crc32`` (big-endian) and a
msgpack map of the :class:`~driftloop.serving.capture.Captured` fields. Every read checks the
CRC; a damaged region is skipped up to the next valid frame and reported as one unreadable
entry, so the caller can count it. A failed or short write (``ENOSPC``) is cut off at once, so
the tail never holds a torn entry the writer goes on appending behind; a torn tail left by a crash
mid-write is cut off (and reported in :attr:`DiskSpool.torn`) when the log is opened. The cursor
is a fixed-size file rewritten in place (no new block is needed, so it can be written on a full
disk) with its own CRC; a damaged cursor means "resend everything", which is harmless.

Several processes (BentoML workers) may share one directory: each claims a ``slot-N`` with an
exclusive ``flock``; a restarted worker takes over a free slot and what its log holds, and copies
in what other free slots still hold (workers that did not come back).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import msgspec

from driftloop.serving.capture import Captured

__all__ = [
    "DiskSpool",
    "Entry",
    "MemorySpool",
    "Spool",
    "SpoolFull",
    "default_spool_dir",
    "make_spool",
]

log = logging.getLogger(__name__)

_MAGIC = b"DL"
_FRAME = struct.Struct(">2sII")  # magic, payload length, crc32 of the payload
_CURSOR = struct.Struct(">QQI")  # segment, offset, crc32 of the first 16 bytes
_MAX_ENTRY = 64 << 20
_READ_CHUNK = 1 << 20


class SpoolFull(Exception):
    """The spool cannot take another entry (a memory spool at its bound)."""


class Entry(NamedTuple):
    """One entry read back: the exchange (``None`` when unreadable) and where the next begins."""

    item: Captured | None
    end: tuple[int, int]


class Spool(Protocol):
    """The capture log: appended on the request path, read and acknowledged by the shipper."""

    durable: bool

    @property
    def size_bytes(self) -> int:
        """Bytes appended and not yet acknowledged."""
        ...

    def append(self, item: Captured) -> None:
        """Store ``item``; raise ``OSError`` or :class:`SpoolFull` when it cannot."""
        ...

    def read(self, limit: int) -> list[Entry]:
        """Up to ``limit`` entries after the last one read."""
        ...

    def ack(self, end: tuple[int, int]) -> None:
        """Everything before ``end`` was delivered (or counted dropped): forget it."""
        ...

    def sync(self) -> None:
        """Make what was appended and acknowledged durable (fsync); called periodically."""
        ...

    def close(self) -> None:
        """Release files and locks."""
        ...


def default_spool_dir(name: str) -> Path:
    """``$XDG_STATE_HOME/driftloop/spool/<name>`` (``~/.local/state`` without XDG)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(base) / "driftloop" / "spool" / safe


class MemorySpool:
    """A bounded in-memory FIFO: survives monitor outages, not the process."""

    durable = False

    def __init__(self, max_items: int = 10_000) -> None:
        self._items: deque[Captured] = deque()
        self._max = max_items
        self._bytes = 0
        self._count = 0

    @property
    def size_bytes(self) -> int:
        """Bytes of bodies waiting (approximate)."""
        return self._bytes

    @property
    def waiting(self) -> int:
        """Exchanges not read yet."""
        return len(self._items)

    def append(self, item: Captured) -> None:
        """Keep ``item``; :class:`SpoolFull` beyond ``max_items``."""
        if len(self._items) >= self._max:
            raise SpoolFull(f"memory spool holds {self._max} exchanges")
        self._items.append(item)
        self._bytes += len(item.request_body) + len(item.response_body)

    def read(self, limit: int) -> list[Entry]:
        """Take up to ``limit`` exchanges (memory is not durable: reading is forgetting)."""
        out: list[Entry] = []
        items = self._items
        while items and len(out) < limit:
            item = items.popleft()
            self._bytes -= len(item.request_body) + len(item.response_body)
            self._count += 1
            out.append(Entry(item, (0, self._count)))
        return out

    def ack(self, end: tuple[int, int]) -> None:
        """Nothing to forget."""

    def sync(self) -> None:
        """Nothing to sync."""

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int  # bytes of complete, valid entries (the only part ever read)
    sealed: bool = False  # no more appends: a newer segment follows


def _scan(data: bytes, start: int) -> tuple[int, int]:
    """Offset of the first valid frame at or after ``start`` in ``data`` (-1: none), and its end."""
    position = data.find(_MAGIC, start)
    while position >= 0:
        if position + _FRAME.size <= len(data):
            _, length, crc = _FRAME.unpack_from(data, position)
            end = position + _FRAME.size + length
            if (
                length <= _MAX_ENTRY
                and end <= len(data)
                and zlib.crc32(data[position + _FRAME.size : end]) == crc
            ):
                return position, end
        position = data.find(_MAGIC, position + 1)
    return -1, -1


class DiskSpool:
    """The on-disk capture log: segments, a cursor, CRC-checked reads, oldest-first eviction."""

    durable = True

    def __init__(
        self,
        directory: str | Path,
        max_bytes: int = 256 << 20,
        segment_bytes: int = 4 << 20,
        fsync_seconds: float = 1.0,
        *,
        _slot: int | None = None,
    ) -> None:
        self.root = Path(directory)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_each = fsync_seconds <= 0
        self._lock_file = self._claim_slot(_slot)
        self.dir = self.root / Path(self._lock_file.name).stem
        self.dir.mkdir(exist_ok=True)
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(Captured).decode
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._wfd = -1  # write descriptor of the last segment
        self._rfd = -1  # read descriptor of the segment being read
        self._rseq = -1
        self._to_sync: list[int] = []  # descriptors of sealed segments awaiting fsync + close
        self._dirty = False
        self._dir_dirty = False
        self.torn = 0  # torn tails cut off when the log was opened
        cursor_path = self.dir / "cursor"
        self._cfd = os.open(cursor_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._cursor = self._read_cursor()
        self._cursor_dirty = False
        self._load()
        self._read = self._cursor
        if _slot is None:
            self._adopt_orphans()
        self.backlog_at_open = self.size_bytes

    def _claim_slot(self, only: int | None = None) -> Any:
        for index in range(1024) if only is None else (only,):
            handle = (self.root / f"slot-{index}.lock").open("ab")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return handle
        if only is not None:
            raise BlockingIOError(f"slot-{only} of {self.root} is in use")
        raise RuntimeError(f"no free spool slot in {self.root}")

    def _adopt_orphans(self) -> None:
        """Take over what free slots still hold (workers that died and were not restarted,
        e.g. a Bento now running fewer workers): copied into this log, then removed there."""
        for lock in sorted(self.root.glob("slot-*.lock")):
            folder = self.root / lock.stem
            if folder == self.dir or not any(folder.glob("seg-*.log")):
                continue
            try:
                orphan = DiskSpool(
                    self.root, self.max_bytes, self.segment_bytes, _slot=int(lock.stem[5:])
                )
            except (BlockingIOError, ValueError):
                continue  # alive (or not ours)
            moved = 0
            try:
                while entries := orphan.read(1024):
                    for entry in entries:
                        if entry.item is None:
                            self.torn += 1
                        else:
                            self.append(entry.item)
                            moved += 1
                    orphan.ack(entries[-1].end)
                self.torn += orphan.torn
                with orphan._lock:
                    for segment in orphan._segments:
                        orphan._unlink(segment)
                    orphan._segments.clear()
            finally:
                orphan.close()
            if moved:
                log.warning("capture log %s: took over %d entries of %s", self.dir, moved, folder)

    # -- opening ----------------------------------------------------------------------------
    def _read_cursor(self) -> tuple[int, int]:
        raw = os.pread(self._cfd, _CURSOR.size, 0)
        if len(raw) == _CURSOR.size:
            seq, offset, crc = _CURSOR.unpack(raw)
            if zlib.crc32(raw[:16]) == crc:
                return seq, offset
        return 0, 0  # none yet, or damaged: read every segment again (resending is harmless)

    def _load(self) -> None:
        seq0, offset0 = self._cursor
        for path in sorted(self.dir.glob("seg-*.log")):
            seq = int(path.stem.split("-")[1])
            if seq < seq0:
                path.unlink(missing_ok=True)
                continue
            self._segments.append(_Segment(seq, path, self._valid_size(path), sealed=True))
        if self._segments:
            self._segments[-1].sealed = False
        if self._segments and (self._segments[0].seq != seq0 or offset0 > self._segments[0].size):
            self._cursor = (self._segments[0].seq, 0)

    def _valid_size(self, path: Path) -> int:
        """Length of ``path`` up to its last valid frame; a torn tail is cut off and counted."""
        data = path.read_bytes()
        position, end, last = 0, 0, 0
        while True:
            position, end = _scan(data, last)
            if position < 0:
                break
            last = end
        if last < len(data):
            self.torn += 1
            log.warning(
                "spool %s: cut off a torn tail of %d bytes (a crash or a full disk mid-write)",
                path,
                len(data) - last,
            )
            with path.open("r+b") as handle:
                handle.truncate(last)
                handle.flush()
                os.fsync(handle.fileno())
        return last

    # -- the request path -------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        """Bytes appended and not yet acknowledged."""
        segments = self._segments
        return sum(s.size for s in segments) - (self._cursor[1] if segments else 0)

    def append(self, item: Captured) -> None:
        """Append one entry with one ``write``; on failure cut it off and raise ``OSError``."""
        payload = self._encode(item)
        frame = _FRAME.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._wfd < 0:
                self._open_tail()
            tail = self._segments[-1]
            if tail.size and tail.size + len(frame) > self.segment_bytes:
                self._seal()
                self._open_tail()
                tail = self._segments[-1]
            try:
                written = os.write(self._wfd, frame)
            except OSError:
                self._cut(tail)
                raise
            if written != len(frame):
                self._cut(tail)
                raise OSError(errno.ENOSPC, f"short write to {tail.path} (disk full?)")
            if self.fsync_each:
                os.fsync(self._wfd)
            tail.size += written
            self._dirty = True

    def _open_tail(self) -> None:
        """Open the last segment for appending, or start a new one when it is sealed."""
        segments = self._segments
        if segments and not segments[-1].sealed:
            tail = segments[-1]  # reopened after a restart: its torn tail was cut off
        else:
            seq = segments[-1].seq + 1 if segments else self._cursor[0] + 1
            tail = _Segment(seq, self.dir / f"seg-{seq:012d}.log", 0)
        fd = os.open(tail.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        if not segments or tail is not segments[-1]:
            segments.append(tail)
            self._dir_dirty = True
            if len(segments) == 1:
                self._cursor = (tail.seq, 0)
                self._write_cursor()
        self._wfd = fd

    def _seal(self) -> None:
        self._segments[-1].sealed = True
        self._to_sync.append(self._wfd)
        self._wfd = -1

    def _cut(self, tail: _Segment) -> None:
        """Remove a failed write's partial frame, so the log never grows behind a torn entry."""
        try:
            os.ftruncate(self._wfd, tail.size)
        except OSError as exc:  # cannot cut: seal this segment, the next write starts another
            log.error("spool %s: cannot cut off a failed write: %s", tail.path, exc)
            self._seal()

    # -- the shipping thread ----------------------------------------------------------------
    def read(self, limit: int, only_seq: int | None = None) -> list[Entry]:
        """Up to ``limit`` entries after the last one read, each CRC-checked (within segment
        ``only_seq`` when given)."""
        out: list[Entry] = []
        while len(out) < limit:
            segment = self._segment(self._read[0])
            if segment is None or (only_seq is not None and segment.seq != only_seq):
                break
            seq, offset = self._read
            size = segment.size  # published after the write completed
            if offset >= size:
                if segment is self._segments[-1] or only_seq is not None:
                    break
                self._read = (self._next_seq(seq), 0)
                continue
            data = self._pread(segment, min(size - offset, _READ_CHUNK), offset)
            position = 0
            while position < len(data) and len(out) < limit:
                if position + _FRAME.size > len(data) and offset + len(data) < size:
                    break  # a header cut by the chunk: read on from here on the next pass
                if position + _FRAME.size <= len(data):
                    magic, length, crc = _FRAME.unpack_from(data, position)
                    end = position + _FRAME.size + length
                    if end > len(data) and magic == _MAGIC and offset + end <= size:
                        if position == 0:  # one entry larger than a chunk
                            data = self._pread(segment, end, offset)
                            continue
                        break  # read the rest from here on the next pass
                    if magic == _MAGIC and end <= len(data):
                        payload = data[position + _FRAME.size : end]
                        if zlib.crc32(payload) == crc:
                            try:
                                item = self._decode(payload)
                            except (msgspec.DecodeError, msgspec.ValidationError):
                                item = None
                            out.append(Entry(item, (seq, offset + end)))
                            position = end
                            continue
                # Damaged: skip to the next valid frame (or the end of what is written).
                if len(data) < size - offset:
                    data = self._pread(segment, size - offset, offset)
                found, _ = _scan(data, position + 1)
                skip_to = found if found >= 0 else len(data)
                log.error(
                    "spool %s: %d damaged bytes at offset %d skipped",
                    segment.path,
                    skip_to - position,
                    offset + position,
                )
                position = skip_to
                out.append(Entry(None, (seq, offset + position)))
            self._read = (seq, offset + position)
        return out

    def _segment(self, seq: int) -> _Segment | None:
        for segment in self._segments:
            if segment.seq >= seq:
                if segment.seq > seq:
                    self._read = (segment.seq, 0)
                return segment
        return None

    def _next_seq(self, seq: int) -> int:
        for segment in self._segments:
            if segment.seq > seq:
                return segment.seq
        return seq + 1

    def _pread(self, segment: _Segment, n: int, offset: int) -> bytes:
        if self._rseq != segment.seq:
            if self._rfd >= 0:
                os.close(self._rfd)
            self._rfd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
            self._rseq = segment.seq
        return os.pread(self._rfd, n, offset)

    @property
    def unread_bytes(self) -> int:
        """Bytes appended and not read yet."""
        seq, offset = self._read
        return sum(s.size for s in self._segments if s.seq >= seq) - offset

    def ack(self, end: tuple[int, int]) -> None:
        """Move the cursor to ``end``; delete the segments wholly before it."""
        if end <= self._cursor:
            return
        with self._lock:
            while len(self._segments) > 1 and self._segments[0].seq < end[0]:
                self._unlink(self._segments.pop(0))
        self._cursor = end
        self._write_cursor()

    def _unlink(self, segment: _Segment) -> None:
        if self._rseq == segment.seq and self._rfd >= 0:
            os.close(self._rfd)
            self._rfd, self._rseq = -1, -1
        segment.path.unlink(missing_ok=True)
        self._dir_dirty = True

    def _write_cursor(self) -> None:
        head = struct.pack(">QQ", *self._cursor)
        try:
            os.pwrite(self._cfd, head + struct.pack(">I", zlib.crc32(head)), 0)
            self._cursor_dirty = True
        except OSError as exc:  # a full disk: resending from the older cursor is harmless
            log.warning("spool %s: cannot write the cursor: %s", self.dir, exc)

    def evict(self) -> list[Entry]:
        """Beyond ``max_bytes``, drop the oldest segment; return its entries not read yet."""
        if self.size_bytes <= self.max_bytes or len(self._segments) < 2:
            return []
        head = self._segments[0]
        lost: list[Entry] = []
        while self._read[0] <= head.seq:
            batch = self.read(256, only_seq=head.seq)
            if not batch:
                break
            lost.extend(batch)
        with self._lock:
            self._segments.pop(0)
            self._unlink(head)
        self._cursor = (self._segments[0].seq, 0)
        if self._read < self._cursor:
            self._read = self._cursor
        self._write_cursor()
        return lost

    def sync(self) -> None:
        """fsync the log, the cursor and the directory when they changed."""
        with self._lock:
            sealed, self._to_sync = self._to_sync, []
            dirty, self._dirty = self._dirty, False
            wfd = self._wfd
        for fd in sealed:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if dirty and wfd >= 0:
            try:
                os.fsync(wfd)
            except OSError as exc:
                log.warning("spool %s: fsync failed: %s", self.dir, exc)
        if self._cursor_dirty:
            self._cursor_dirty = False
            os.fsync(self._cfd)
        if self._dir_dirty:
            self._dir_dirty = False
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        """fsync and close everything, release the slot."""
        try:
            self.sync()
        except OSError as exc:
            log.warning("spool %s: final fsync failed: %s", self.dir, exc)
        for fd in (self._wfd, self._rfd, self._cfd):
            if fd >= 0:
                os.close(fd)
        self._wfd = self._rfd = self._cfd = -1
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()


def make_spool(capture: Any, name: str) -> Spool:
    """The spool ``capture`` (a :class:`~driftloop.settings.CaptureSettings`) asks for: the
    on-disk log in ``capture.spool_dir`` or :func:`default_spool_dir` of ``name``, or memory
    when ``capture.memory_spool`` is set (or the folder cannot be used, said loudly)."""
    if capture.memory_spool:
        return MemorySpool(capture.queue_size)
    directory = Path(capture.spool_dir) if capture.spool_dir else default_spool_dir(name)
    try:
        spool = DiskSpool(
            directory, capture.spool_max_bytes, capture.segment_bytes, capture.fsync_seconds
        )
    except OSError as exc:
        log.error(
            "cannot use %s for the capture log (%s): records are kept in memory and lost if "
            "the process dies; give a writable folder (--spool-dir / spool_dir=)",
            directory,
            exc,
        )
        return MemorySpool(capture.queue_size)
    log.info("capture log in %s", spool.dir)
    return spool
