"""The capture pipeline behind the proxy and the middleware: log -> records -> batches -> monitor.

The request path only calls :meth:`Shipper.offer`, which appends the exchange to the spool (the
crash-safe on-disk log by default: one ``write()``, no parsing) and never blocks on the monitor.
One daemon thread reads the log behind the writer, turns exchanges into records, ships them in
gzip batches and acknowledges the log once the monitor took a batch; a failed batch is retried
with backoff while the log grows on disk. Records are counted so that, at every quiet moment,
``sent + dropped (by reason) = captured`` (plus whatever still waits in the log); a request lost
before its rows were known counts as one record.

When the spool cannot store an exchange (a full disk), it is kept in memory (bounded by
``queue_size``, not crash-safe) and put back into the log as soon as the disk has room.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from typing import Any

import msgspec

from driftloop.serving.capture import Captured, RecordShape
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.records import RecordMaker
from driftloop.serving.sink import Outcome, Sink
from driftloop.serving.spool import Entry, Spool, SpoolFull
from driftloop.settings import CaptureSettings

__all__ = ["Shipper"]

log = logging.getLogger(__name__)

_Part = tuple[list[dict[str, Any]], bytes]
_BACKLOG_BYTES = 1 << 20


class Shipper:
    """Reads the capture log in a background thread and ships batches to the monitor."""

    def __init__(
        self,
        model: str,
        sink: Sink,
        spool: Spool,
        metrics: ShippingMetrics,
        settings: CaptureSettings,
        *,
        source: str = "sidecar",
        shape: RecordShape | None = None,
        maker: RecordMaker | None = None,
        rand: random.Random | None = None,
    ) -> None:
        self.model = model
        self.sink = sink
        self.spool = spool
        self.settings = settings
        self.maker = maker or RecordMaker(model, metrics, shape)
        self.source = f"{source}:{socket.gethostname()}:{os.getpid()}"[:200]
        self._rand = rand or random.Random()
        self._encode_json = msgspec.json.Encoder().encode
        self._overflow: deque[Captured] = deque()  # exchanges the spool could not store
        self._maxlen = settings.queue_size
        self._batch: list[dict[str, Any]] = []
        self._batch_since = 0.0
        self._batch_end: tuple[int, int] | None = None
        self._batch_volatile = 0  # records of the batch held in memory only
        self._held: deque[_Part] = deque()  # parts of the batch being delivered
        self._held_end: tuple[int, int] | None = None
        self._held_volatile = 0
        self._held_late = False  # counted as spooled: delivery will count them as replayed
        self._behind = bool(getattr(spool, "backlog_at_open", 0))
        self._retry_at = 0.0
        self._failures = 0
        self._spool_failing = False
        self._respool_at = 0.0
        self._sync_at = 0.0
        self._idle = min(max(settings.batch_age_seconds / 4, 0.01), 0.25)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.m_captured = metrics.captured.labels(model)
        self.m_sent = metrics.sent.labels(model)
        self.m_spooled = metrics.spooled.labels(model)
        self.m_replayed = metrics.replayed.labels(model)
        self.m_spool_bytes = metrics.spool_bytes.labels(model)
        self.m_queue = metrics.queue_depth.labels(model)
        self.m_spool_errors = metrics.spool_errors.labels(model)
        self._m_dropped = metrics.dropped
        self._m_ship = metrics.ship_seconds
        self.m_spool_bytes.set(spool.size_bytes if self._behind else 0)
        torn = getattr(spool, "torn", 0)
        if torn:
            self.drop("spool_torn", torn)

    @property
    def shape(self) -> RecordShape:
        """Where rows live; set it when the monitor's schema changes."""
        return self.maker.shape

    @shape.setter
    def shape(self, value: RecordShape) -> None:
        self.maker.shape = value

    # -- request path -------------------------------------------------------------------------
    def offer(self, item: Captured) -> bool:
        """Log ``item`` (call it before the response's last byte goes out). Never blocks."""
        try:
            self.spool.append(item)
            return True
        except SpoolFull:
            self.drop("queue_full")
            return False
        except OSError as exc:
            return self._keep_in_memory(item, exc)

    def _keep_in_memory(self, item: Captured, exc: OSError) -> bool:
        self.m_spool_errors.inc()
        if not self._spool_failing:
            self._spool_failing = True
            log.error(
                "cannot write to the capture log (%s): keeping records in memory, not crash-safe, "
                "until it can (free space in the spool directory or raise its size)",
                exc,
            )
        if len(self._overflow) >= self._maxlen:
            self.drop("queue_full")
            return False
        self._overflow.append(item)
        return True

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records (a request whose rows are unknown: one) as not recorded."""
        self.m_captured.inc(count)
        self._m_dropped.labels(self.model, reason).inc(count)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the shipping thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="driftloop-shipper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ship what is logged while the monitor answers (up to ``timeout``), then stop. What
        a durable log still holds is sent by the next process; anything else is counted."""
        self._stop_by = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
            self._thread = None
        else:
            self._final()
        self.sink.close()
        self.spool.close()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._step(False)
            except Exception:  # the thread must survive any bug; capture is best effort
                log.exception("driftloop shipper step failed")
                busy = False
            if not busy:
                # Records are read in bulk: waking a quarter of the batch age apart costs less
                # CPU per record than polling a trickle, and delays no batch noticeably.
                self._wake.wait(self._idle)
                self._wake.clear()
        self._final()

    def _final(self) -> None:
        deadline = getattr(self, "_stop_by", time.monotonic())
        try:
            while time.monotonic() < deadline and not self._failures:
                self._step(True)
                if not (self._held or self._batch or self._overflow or self._unread()):
                    break
        except Exception:
            log.exception("driftloop shipper failed while stopping")
        lost = min(self._held_volatile, sum(len(r) for r, _ in self._held))
        lost += self._batch_volatile + len(self._overflow)
        if not self.spool.durable:
            lost = sum(len(r) for r, _ in self._held) + len(self._batch)
            lost += len(self._overflow) + getattr(self.spool, "waiting", 0)
            self.m_captured.inc(getattr(self.spool, "waiting", 0) + len(self._overflow))
        elif self._overflow:
            self.m_captured.inc(len(self._overflow))
        if lost:
            self._m_dropped.labels(self.model, "shutdown").inc(lost)
            log.warning("%d records not delivered at shutdown (kept in memory only)", lost)
        try:
            self.spool.sync()
        except OSError as exc:
            log.warning("cannot sync the capture log at shutdown: %s", exc)

    def _unread(self) -> int:
        return int(getattr(self.spool, "unread_bytes", 0) or getattr(self.spool, "waiting", 0))

    def _step(self, stopping: bool) -> bool:
        now = time.monotonic()
        busy = False
        if self._held and now >= self._retry_at and self._send_held():
            busy = True
        if not self._held:
            self._fill(now)
            if not self._batch and self._batch_end is not None:
                # Entries that made no records (counted dropped by the maker) are done with.
                self.spool.ack(self._batch_end)
                self._batch_end = None
            batch = self._batch
            if batch and (
                stopping
                or len(batch) >= self.settings.batch_records
                or now - self._batch_since >= self.settings.batch_age_seconds
            ):
                self._ship()
                # Only a full batch justifies skipping the sleep: a thread that spins on a
                # trickle would hold the GIL the event loop needs (the "convoy effect").
                busy = not self._held and len(batch) >= self.settings.batch_records
        self._chores(now)
        return busy

    def _fill(self, now: float) -> None:
        room = self.settings.batch_records - len(self._batch)
        if room <= 0:
            return
        for entry in self.spool.read(min(room, 512)):
            self._add_entry(entry)
        if self._overflow:
            if now >= self._respool_at:
                self._respool(now)
            while self._overflow and len(self._batch) < self.settings.batch_records:
                self._add(self._overflow.popleft(), volatile=True)

    def _respool(self, now: float) -> None:
        """Put exchanges kept in memory back into the log once it takes writes again."""
        overflow = self._overflow
        try:
            while overflow:
                self.spool.append(overflow[0])
                overflow.popleft()
        except (OSError, SpoolFull):
            self._respool_at = now + 1.0
            return
        if self._spool_failing:
            self._spool_failing = False
            log.warning("the capture log takes writes again: records are crash-safe again")

    def _add_entry(self, entry: Entry) -> None:
        if entry.item is None:
            self.drop("spool_corrupt")
        else:
            self._add(entry.item, volatile=False)
        self._batch_end = entry.end

    def _add(self, item: Captured, *, volatile: bool) -> None:
        records = self._records(item)
        if not records:
            return
        if not self._batch:
            self._batch_since = time.monotonic()
        self._batch.extend(records)
        if volatile:
            self._batch_volatile += len(records)

    def _records(self, item: Captured) -> list[dict[str, Any]]:
        """The records of ``item``, counted captured; the maker counts a request without any
        under its reason, and here it counts as one captured record (so the sums close)."""
        try:
            records = self.maker.records(item)
        except Exception as exc:  # the maker counts its own failures; this is a bug guard
            log.debug("cannot capture request %s: %s", item.request_id, exc)
            self.drop("capture_error")
            return []
        self.m_captured.inc(len(records) or 1)
        if self._behind and records:
            self.m_spooled.inc(len(records))
        return records

    def _chores(self, now: float) -> None:
        evict = getattr(self.spool, "evict", None)
        if evict is not None:
            for entry in evict():
                n = len(self._records(entry.item)) if entry.item is not None else 0
                if entry.item is None:
                    self.drop("spool_corrupt")
                elif n:
                    self._m_dropped.labels(self.model, "spool_full").inc(n)
        if now >= self._sync_at:
            self._sync_at = now + max(self.settings.fsync_seconds, 0.05)
            try:
                self.spool.sync()
            except OSError as exc:
                log.warning("cannot fsync the capture log: %s", exc)
        self.m_queue.set(len(self._overflow) + getattr(self.spool, "waiting", 0))
        # Only a backlog counts as spooling: what waits for an unreachable monitor, or more
        # than the thread keeps up with; the batch being filled is not (the alert reads this).
        behind = self._behind or self._unread() > _BACKLOG_BYTES
        self.m_spool_bytes.set(self.spool.size_bytes if behind else 0)

    # -- delivery -----------------------------------------------------------------------------
    def _encode(self, records: list[dict[str, Any]]) -> bytes:
        batch = {"batch_id": os.urandom(16).hex(), "source": self.source, "records": records}
        return gzip.compress(self._encode_json(batch), compresslevel=1)

    def _ship(self) -> None:
        records, self._batch = self._batch, []
        self._held.append((records, self._encode(records)))
        self._held_end, self._batch_end = self._batch_end, None
        self._held_volatile, self._batch_volatile = self._batch_volatile, 0
        self._held_late = self._behind
        self._send_held()

    def _send_held(self) -> bool:
        """Deliver the held parts in order; True when all are settled (sent or dropped)."""
        held = self._held
        while held:
            records, payload = held[0]
            outcome = self._send(payload)
            n = len(records)
            if outcome.ok:
                held.popleft()
                self._recovered()
                self.m_sent.inc(n)
                if self._held_late:
                    self.m_replayed.inc(n)
                continue
            if outcome.kind == "reject":
                held.popleft()
                if n == 1:
                    self._m_dropped.labels(self.model, "rejected").inc()
                    rid = records[0].get("request_id")
                    log.warning("monitor rejected record %s: %s", rid, outcome)
                    continue
                # Find the bad records by halving; the good ones still go through.
                half = n // 2
                held.appendleft((records[half:], self._encode(records[half:])))
                held.appendleft((records[:half], self._encode(records[:half])))
                continue
            if not self._held_late:
                self._held_late = True
                self.m_spooled.inc(sum(len(r) for r, _ in held))
            self._behind = True
            self._backoff(outcome)
            return False
        if self._held_end is not None:
            self.spool.ack(self._held_end)
            self._held_end = None
        self._held_volatile = 0
        if self._behind and not self._unread() and not self._overflow:
            self._behind = False
        return True

    def _send(self, payload: bytes) -> Outcome:
        start = time.perf_counter()
        try:
            outcome = self.sink.send(payload)
        except Exception as exc:  # a crashing sink is a failed delivery, not a failed request
            outcome = Outcome("retry", f"sink raised {type(exc).__name__}: {exc}")
        self._m_ship.labels(self.model, outcome.kind).observe(time.perf_counter() - start)
        return outcome

    def _backoff(self, outcome: Outcome) -> None:
        if self._failures == 0:
            log.warning("monitor unreachable, records wait in the capture log: %s", outcome.detail)
        self._failures += 1
        base = self.settings.backoff_base_seconds * 2 ** min(self._failures - 1, 16)
        delay = min(self.settings.backoff_max_seconds, base)
        delay = delay / 2 + self._rand.uniform(0, delay / 2)  # "equal jitter"
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self.settings.backoff_max_seconds))
        self._retry_at = time.monotonic() + delay

    def _recovered(self) -> None:
        if self._failures:
            log.warning("monitor reachable again after %d failed attempts", self._failures)
        self._failures = 0
        self._retry_at = 0.0
