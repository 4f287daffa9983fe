"""The capture core shared by the sidecar proxy and the middleware (one set of rules).

- **Request ids**: an incoming ``X-Request-ID`` of printable ASCII (at most 180 characters) is
  kept; otherwise one is minted (and an OIP v2 body ``id`` may replace it in the records).
- **What is captured**: requests of the capture methods (``POST``, ``PUT``, ``PATCH``) that
  carry a body. A body that does not start like a JSON object or array is counted
  (``not_json``) and not logged; bodies without rows are counted when parsed (``no_rows``).
- **Body limits**: a request body over ``max_body_bytes`` is answered but not recorded
  (``too_large``); a response body over it is recorded without outputs.
- **What is counted as dropped**: everything not recorded, by reason, in
  ``driftloop_records_dropped_total``; and every request seen in
  ``driftloop_capture_requests_total{result}`` so the captured-to-requests ratio can alert.

It also assembles a shipper (:func:`make_shipper`) for both, so the middleware never imports
the sidecar module.
"""

from __future__ import annotations

import logging
import os
import random
import re
from datetime import datetime
from typing import Any

from driftloop.contract import IDENTIFIER_CHARACTER, Layout
from driftloop.serving.capture import Captured, RecordShape
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.records import RecordMaker
from driftloop.serving.shipper import Shipper
from driftloop.serving.sink import HttpSink
from driftloop.serving.spool import make_spool
from driftloop.settings import CaptureSettings

__all__ = [
    "CAPTURE_METHODS",
    "CaptureCore",
    "LayoutReporter",
    "make_shipper",
    "request_id",
    "valid_request_id",
]

log = logging.getLogger(__name__)

CAPTURE_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose requests are predictions to capture."""

_REQUEST_ID = re.compile(rf"^{IDENTIFIER_CHARACTER}{{1,180}}$".encode())
_JSON_STARTS = (b"{", b"[")


def valid_request_id(value: bytes) -> bool:
    """True when ``value`` can be a record's request id (printable ASCII, short enough)."""
    return _REQUEST_ID.match(value) is not None


def request_id(incoming: bytes) -> tuple[bytes, bool]:
    """The request id to use for a request that came with ``incoming`` (``b""``: none), and
    whether it was minted here."""
    if incoming and _REQUEST_ID.match(incoming) is not None:
        return incoming, False
    # 128 random bits as 32 hex digits, like uuid4().hex without a getrandom() call per request
    # (seeded from os.urandom, reseeded in every forked worker).
    return b"%032x" % _ids.getrandbits(128), True


_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)


class CaptureCore:
    """Decides what is captured and hands it to the shipper, counting what is not."""

    def __init__(
        self,
        model: str,
        shipper: Shipper | None,
        max_body_bytes: int,
        methods: frozenset[str] = CAPTURE_METHODS,
    ) -> None:
        self.model = model
        self.shipper = shipper
        self.max_body_bytes = max_body_bytes
        self.methods = methods

    def wants(self, method: str) -> bool:
        """Whether requests of ``method`` are captured at all."""
        return self.shipper is not None and method in self.methods

    def too_large(self, path: str) -> None:
        """Count a request whose body is over the limit (answered, not recorded)."""
        if self.shipper is not None:
            self.shipper.drop("too_large")
            self.shipper.maker.note("too_large", path, f"over {self.max_body_bytes} bytes")

    def offer(
        self,
        *,
        version: str,
        variant: str,
        request_id: bytes,
        minted: bool,
        path: str,
        timestamp: datetime,
        body: bytes,
        response: bytes,
        status: int,
        latency_ms: float,
        encoding: bytes = b"",
    ) -> None:
        """Queue one answered request for capture (never blocks, never raises)."""
        shipper = self.shipper
        if shipper is None or not body:
            return
        if body[:64].lstrip()[:1] not in _JSON_STARTS:
            # Not JSON (an image, a form): counted here, never written to the capture log.
            shipper.drop("not_json")
            text = body[:40].decode("utf-8", "replace")
            shipper.maker.note("not_json", path, f"body starts {text!r}")
            return
        item = Captured(
            self.model,
            version,
            variant,
            request_id.decode(),
            timestamp,
            body,
            response,
            status,
            latency_ms,
            encoding,
            path,
            minted,
        )
        if not shipper.offer(item):  # counted as dropped (queue_full) by the shipper
            shipper.maker.note("queue_full", path, "the capture log is full")


class LayoutReporter:
    """Tells the monitor which layout a sender inferred for a route (``POST
    /v1/models/{model}/layouts``, scope ingest), so the model's schema shows it."""

    def __init__(
        self, monitor_url: str, model: str, token: str | None, timeout: float = 2.0
    ) -> None:
        import httpx

        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = monitor_url.rstrip("/") + f"/v1/models/{model}/layouts"
        self.client = httpx.Client(headers=headers, timeout=timeout, trust_env=False)

    def __call__(self, path: str, layout: Layout) -> None:
        """Report one route's layout; failures are logged, never raised."""
        body = {"routes": {path or "/": layout.model_dump(mode="json")}}
        try:
            response = self.client.post(self.url, json=body)
        except Exception as exc:  # httpx errors and anything else: informative only
            log.info("cannot report the layout of %s to the monitor: %s", path, exc)
            return
        if response.status_code >= 300:
            log.info("the monitor refused the layout of %s: HTTP %d", path, response.status_code)


def make_shipper(
    model: str,
    monitor_url: str | None,
    token: str | None,
    capture: CaptureSettings,
    registry: Any,
    *,
    source: str,
    shape: RecordShape | None = None,
    spool_name: str | None = None,
) -> Shipper:
    """A shipper to ``monitor_url`` with the crash-safe capture log in ``capture.spool_dir``
    (default: :func:`~driftloop.serving.spool.default_spool_dir` of ``spool_name`` or ``model``),
    or a memory spool when ``capture.memory_spool`` is set.

    Without ``monitor_url`` nothing can be delivered: records are counted as dropped
    (``no_monitor``), never as sent.
    """
    spool = make_spool(capture, spool_name or model)
    metrics = ShippingMetrics(registry)
    reporter = LayoutReporter(monitor_url, model, token) if monitor_url else None
    maker = RecordMaker(model, metrics, shape, report=reporter, discard=not monitor_url)
    sink = HttpSink(monitor_url, token, capture.timeout_seconds) if monitor_url else _NoMonitor()
    return Shipper(model, sink, spool, metrics, capture, source=source, maker=maker)


class _NoMonitor:
    """The sink when no monitor is configured. Never reached: the record maker counts every
    record as dropped (``no_monitor``) before it is batched, so none is counted as sent."""

    def send(self, payload: bytes) -> Any:
        from driftloop.serving.sink import Outcome

        return Outcome("reject", "no monitor configured")

    def close(self) -> None:
        return None
