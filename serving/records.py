"""``RecordMaker``: one captured request in, its records out, or a counted reason why not.

Runs in the shipper's thread. It picks the layout of each route (a registered one always wins,
then the model server's OpenAPI document, then what the route's requests look like, cached per
route), and counts every request it cannot record under a named reason (``not_json``,
``no_rows``, ``capture_error``), logged once per route with the fix. A newly inferred layout is
handed to ``report`` so the monitor's schema shows it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from driftloop.contract import Layout
from driftloop.serving.capture import Captured, RecordShape, records_from
from driftloop.serving.layout import infer_layout

__all__ = ["MAX_ROUTES", "RecordMaker"]

log = logging.getLogger(__name__)

MAX_ROUTES = 256
"""Routes whose inferred layout is cached and reported (bounded: paths may carry ids)."""

_FIX = {
    "not_json": "send the body as JSON (Content-Type: application/json); other bodies are "
    "answered but never recorded",
    "no_rows": "register where the rows are, e.g. POST /v1/models "
    '{{"name": "{model}", "schema": {{"routes": {{"{path}": {{"input_path": "<key>"}}}}}}}}, '
    'or send them as {{"inputs": [{{...}}, ...]}}',
    "capture_error": "check the request body against the registered layout of this route",
    "no_monitor": "give the middleware monitor_url= (the sidecar --monitor)",
    "too_large": "raise the capture limit (DRIFTLOOP_SIDECAR_CAPTURE__MAX_BODY_BYTES, or "
    "CaptureSettings.max_body_bytes of the middleware) or send smaller batches",
    "queue_full": "give the capture log more room (spool_max_bytes) or check that the monitor "
    "keeps up (docs/runbooks.md#driftloopcaptureloss)",
}


class RecordMaker:
    """Turns :class:`Captured` items into records; counts and logs what it cannot turn."""

    def __init__(
        self,
        model: str,
        metrics: Any,
        shape: RecordShape | None = None,
        *,
        report: Callable[[str, Layout], None] | None = None,
        discard: bool = False,
    ) -> None:
        """``metrics`` is a :class:`~driftloop.serving.metrics.ShippingMetrics`; ``discard``
        (no monitor to send to) counts every record as dropped (``no_monitor``)."""
        self.model = model
        self.discard = discard
        self.shape = shape or RecordShape.default()
        self.report = report
        self.openapi: dict[str, Layout] = {}
        self.inferred: dict[str, Layout] = {}
        self._warned: set[tuple[str, str]] = set()
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self._m_dropped = metrics.dropped
        self._m_recorded = metrics.requests.labels(model, "recorded")
        self._m_requests_dropped = metrics.requests.labels(model, "dropped")

    def layout_of(self, path: str) -> Layout | None:
        """The layout route ``path`` is read with now (None: not known yet)."""
        return self.shape.registered(path) or self.openapi.get(path) or self.inferred.get(path)

    def layouts(self) -> dict[str, Layout]:
        """Every route's layout known now (registered routes, OpenAPI, inferred)."""
        known = {**self.inferred, **self.openapi, **self.shape.routes}
        if self.shape.layout is not None:
            known = dict.fromkeys(known, self.shape.layout) or {"*": self.shape.layout}
        return known

    def drop(self, reason: str, path: str = "", detail: str = "") -> None:
        """Count one request not recorded under ``reason`` (the shipper counts it as one
        captured record, so the sums close); log it once per route."""
        self._m_dropped.labels(self.model, reason).inc()
        self.note(reason, path, detail)

    def note(self, reason: str, path: str = "", detail: str = "") -> None:
        """Count a request not recorded (``driftloop_capture_requests_total{result="dropped"}``)
        whose records were counted elsewhere; log it once per route with the fix."""
        self._m_requests_dropped.inc()
        key = (path, reason)
        if key in self._warned or len(self._warned) >= 4 * MAX_ROUTES:
            return
        self._warned.add(key)
        fix = _FIX.get(reason, "see docs/runbooks.md#driftloopcaptureloss")
        log.warning(
            "driftloop: a request to %s of model %s was answered but not recorded (%s%s); it is "
            "counted in driftloop_records_dropped_total{reason=%r}. To fix: %s. "
            "(Logged once per route.)",
            path or "/",
            self.model,
            reason,
            f": {detail}" if detail else "",
            reason,
            fix.format(model=self.model, path=path or "/"),
        )

    def records(self, item: Captured) -> list[dict[str, Any]]:
        """The records of ``item``; ``[]`` after counting the reason when there are none."""
        try:
            request = json.loads(item.request_body)
        except ValueError:
            self.drop("not_json", item.path, _snippet(item.request_body))
            return []
        path = item.path
        registered = self.shape.registered(path)
        try:
            if registered is not None:
                records = records_from(item, request, registered, self.shape)
            else:
                records = self._inferred_records(item, request, path)
        except Exception as exc:  # capture is best effort: a bug here never stops the thread
            self.drop("capture_error", path, f"{type(exc).__name__}: {exc}")
            return []
        if not records:
            self.drop("no_rows", path, _snippet(item.request_body))
            return []
        if self.discard:
            self.drop("no_monitor", path, f"{len(records)} rows, no monitor configured")
            return []
        self._m_recorded.inc()
        return records

    def _inferred_records(self, item: Captured, request: Any, path: str) -> list[dict[str, Any]]:
        known = self.openapi.get(path) or self.inferred.get(path)
        if known is not None:
            records = records_from(item, request, known, self.shape)
            if records:
                self._report(path, known)
                return records
        layout = infer_layout(request)
        if layout is None or layout == known:
            return []
        records = records_from(item, request, layout, self.shape)
        if records and path not in self.openapi and len(self.inferred) < MAX_ROUTES:
            with self._lock:
                self.inferred[path] = layout
            self._reported.discard(path)
            self._report(path, layout)
        return records

    def _report(self, path: str, layout: Layout) -> None:
        """Log and report a route's layout the first time it yields records."""
        if path in self._reported or len(self._reported) >= MAX_ROUTES:
            return
        self._reported.add(path)
        log.info("driftloop: rows of %s (model %s): %s", path or "/", self.model, describe(layout))
        if self.report is not None:
            try:
                self.report(path, layout)
            except Exception as exc:  # reporting is informative only
                log.debug("cannot report the layout of %s: %s", path, exc)


def describe(layout: Layout) -> str:
    """One line naming where a layout finds rows, for logs."""
    where = f"under {layout.input_path!r}" if layout.input_path else "the body itself"
    kind = "OIP v2 tensors" if layout.protocol == "oip_v2" else "rows"
    source = f" [{layout.inferred}]" if layout.inferred else " [registered]"
    return f"{kind} {where}{source}"


def _snippet(body: bytes) -> str:
    text = body[:60].decode("utf-8", "replace")
    return f"body starts {text!r}"
