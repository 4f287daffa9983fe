"""The capture pipeline behind the proxy and the middleware: queue -> records -> batches ->
monitor, with a spool while the monitor is away.

The request path only calls :meth:`Shipper.offer`, which appends to a bounded ``deque`` (or
counts a drop) and never blocks. Everything else, JSON parsing included, runs in one daemon
thread, so fsync and network waits never touch the event loop. While the spool holds anything,
new batches are appended behind it, so the monitor receives records in capture order.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any

from driftloop.serving.capture import Captured, RecordShape, extract_records
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.sink import Outcome, Sink
from driftloop.serving.spool import Spool
from driftloop.settings import CaptureSettings

__all__ = ["Shipper"]

log = logging.getLogger(__name__)


class Shipper:
    """Bounded capture queue drained by a background thread that ships batches."""

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
        rand: random.Random | None = None,
    ) -> None:
        self.model = model
        self.sink = sink
        self.spool = spool
        self.settings = settings
        self.shape = shape or RecordShape.default()
        self.source = f"{source}:{socket.gethostname()}:{os.getpid()}"[:200]
        self._rand = rand or random.Random()
        self._queue: deque[Captured] = deque()
        self._maxlen = settings.queue_size
        self._pending: list[dict[str, Any]] = []
        self._pending_since = 0.0
        self._retry_at = 0.0
        self._failures = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.m_captured = metrics.captured.labels(model)
        self.m_sent = metrics.sent.labels(model)
        self.m_spooled = metrics.spooled.labels(model)
        self.m_replayed = metrics.replayed.labels(model)
        self.m_spool_bytes = metrics.spool_bytes.labels(model)
        self.m_queue = metrics.queue_depth.labels(model)
        self._m_dropped = metrics.dropped
        self._m_ship = metrics.ship_seconds
        self.m_drop_queue_full = metrics.dropped.labels(model, "queue_full")
        self.m_spool_bytes.set(spool.size_bytes)

    # -- request path -------------------------------------------------------------------------
    def offer(self, item: Captured) -> bool:
        """Queue ``item`` for capture; when the queue is full, count it dropped. Never blocks."""
        if len(self._queue) >= self._maxlen:
            self.m_drop_queue_full.inc()
            return False
        self._queue.append(item)
        return True

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records (or responses) not captured, e.g. ``too_large``."""
        self._m_dropped.labels(self.model, reason).inc(count)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the shipping thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="driftloop-shipper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Capture what is queued, try one last delivery, spool the rest, and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if not self.spool.durable and self.spool.records:
            self._m_dropped.labels(self.model, "shutdown").inc(self.spool.records)
        if self._queue:
            self._m_dropped.labels(self.model, "shutdown").inc(len(self._queue))
        self.sink.close()
        self.spool.close()

    def wake(self) -> None:
        """Ask the thread to look at the queue now (tests, shutdown)."""
        self._wake.set()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                busy = self._step(stopping)
            except Exception:  # the thread must survive any bug; capture is best effort
                log.exception("driftloop shipper step failed")
                busy = False
            if stopping and not self._queue:
                self._final()
                return
            if not busy:
                self._wake.wait(0.05)
                self._wake.clear()

    def _step(self, stopping: bool) -> bool:
        self._collect()
        now = time.monotonic()
        pending = self._pending
        if pending and (
            stopping
            or len(pending) >= self.settings.batch_records
            or now - self._pending_since >= self.settings.batch_age_seconds
        ):
            self._pending = []
            self._flush(pending)
        # Only a full batch waiting justifies skipping the sleep: a thread that spins on a
        # trickle would hold the GIL the event loop needs (the "convoy effect").
        busy = len(self._queue) >= self.settings.batch_records
        if self.spool.records and now >= self._retry_at and not stopping:
            busy = self._replay() or busy
        self.m_queue.set(len(self._queue))
        self.m_spool_bytes.set(self.spool.size_bytes)
        return busy

    def _collect(self) -> None:
        queue = self._queue
        limit = self.settings.batch_records
        done = 0
        while queue and len(self._pending) < limit:
            item = queue.popleft()
            done += 1
            if done % 16 == 0:
                time.sleep(0)  # hand the GIL back to the event loop between small slices
            try:
                records = extract_records(item, self.shape)
            except Exception as exc:
                self._m_dropped.labels(self.model, "capture_error").inc()
                log.debug("cannot capture request %s: %s", item.request_id, exc)
                continue
            if records:
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.extend(records)
                self.m_captured.inc(len(records))

    def _final(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self._flush(pending)

    # -- delivery -----------------------------------------------------------------------------
    def _encode(self, records: list[dict[str, Any]]) -> bytes:
        batch = {"batch_id": uuid.uuid4().hex, "source": self.source, "records": records}
        body = json.dumps(batch, separators=(",", ":"), default=str).encode()
        return gzip.compress(body, compresslevel=1)

    def _flush(self, records: list[dict[str, Any]]) -> None:
        payload = self._encode(records)
        if self.spool.records or time.monotonic() < self._retry_at:
            self._to_spool(payload, len(records))
            return
        self._deliver(records, payload, replay=False)

    def _deliver(self, records: list[dict[str, Any]], payload: bytes, *, replay: bool) -> bool:
        """Send one batch; True when the monitor took it or it was rightly dropped."""
        outcome = self._send(payload)
        n = len(records)
        if outcome.ok:
            self._recovered()
            self.m_sent.inc(n)
            if replay:
                self.m_replayed.inc(n)
            return True
        if outcome.kind == "reject":
            if n == 1:
                self._m_dropped.labels(self.model, "rejected").inc()
                log.warning("monitor rejected record %s: %s", records[0].get("request_id"), outcome)
                return True
            # Find the bad records by halving; the good ones still go through.
            half = n // 2
            for part in (records[:half], records[half:]):
                encoded = self._encode(part)
                if not self._deliver(part, encoded, replay=replay) and replay:
                    self._to_spool(encoded, len(part))
            return True
        self._backoff(outcome)
        if not replay:
            self._to_spool(payload, n)
        return False

    def _send(self, payload: bytes) -> Outcome:
        start = time.perf_counter()
        try:
            outcome = self.sink.send(payload)
        except Exception as exc:  # a crashing sink is a failed delivery, not a failed request
            outcome = Outcome("retry", f"sink raised {type(exc).__name__}: {exc}")
        self._m_ship.labels(self.model, outcome.kind).observe(time.perf_counter() - start)
        return outcome

    def _to_spool(self, payload: bytes, n: int) -> None:
        try:
            evicted = self.spool.append(payload, n)
        except OSError as exc:
            self._m_dropped.labels(self.model, "spool_error").inc(n)
            log.error("cannot spool %d records: %s", n, exc)
            return
        self.m_spooled.inc(n)
        if evicted:
            self._m_dropped.labels(self.model, "spool_full").inc(evicted)

    def _replay(self) -> bool:
        """Send spooled batches in order; True when more remain and the monitor answers."""
        for _ in range(16):
            entry = self.spool.peek()
            if entry is None:
                return False
            payload, count = entry
            outcome = self._send(payload)
            if outcome.ok:
                self.spool.pop()
                self._recovered()
                self.m_sent.inc(count)
                self.m_replayed.inc(count)
                continue
            if outcome.kind == "reject":
                self.spool.pop()
                records = json.loads(gzip.decompress(payload))["records"]
                self._deliver(records, payload, replay=True)
                continue
            self._backoff(outcome)
            return False
        return True

    def _backoff(self, outcome: Outcome) -> None:
        if self._failures == 0:
            log.warning("monitor unreachable, spooling records: %s", outcome.detail)
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
