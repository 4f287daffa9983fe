"""The monitor's own metrics, on an injected registry, and the ``/metrics`` exposition."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MonitorMetrics:
    """Counters and histograms the monitor updates as it works."""

    def __init__(self, registry: CollectorRegistry, version: str) -> None:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        Info("driftloop_build", "Driftloop build information.", registry=registry).info(
            {"version": version, "component": "monitor"}
        )
        self.records = Counter(
            "driftloop_ingest_records_total",
            "Records received by the monitor, by outcome (stored or duplicate).",
            ["model", "variant", "outcome"],
            registry=registry,
        )
        self.cloudevents = Counter(
            "driftloop_cloudevents_total",
            "KServe payload-logger CloudEvents received, by result (waiting: the first half of a "
            "pair; paired: turned into records; no_rows; unpaired: pruned without its pair).",
            ["result"],
            registry=registry,
        )
        self.batches = Counter(
            "driftloop_ingest_batches_total",
            "Record batches received, by result (accepted, invalid, too_large, unavailable).",
            ["result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "driftloop_ingest_batch_duration_seconds",
            "Time to validate and commit one record batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_requests = Counter(
            "driftloop_http_requests_total",
            "HTTP requests served by the monitor.",
            ["handler", "method", "code"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "driftloop_http_request_duration_seconds",
            "Time to serve an HTTP request.",
            ["handler", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.leader = Gauge(
            "driftloop_leader",
            "1 when this monitor process runs the periodic jobs.",
            registry=registry,
        )
        self.job_runs = Counter(
            "driftloop_job_runs_total",
            "Periodic job runs, by task and result (ok, error). Not `job`: Prometheus owns it.",
            ["task", "result"],
            registry=registry,
        )
        self.job_last_success = Gauge(
            "driftloop_job_last_success_timestamp_seconds",
            "Unix time of the task's last successful run on this leader; before the first, of "
            "the first attempt (so a task that hangs from the start goes stale too).",
            ["task"],
            registry=registry,
        )
        self.job_interval = Gauge(
            "driftloop_job_interval_seconds",
            "How often the leader runs the task.",
            ["task"],
            registry=registry,
        )
        self.job_seconds = Histogram(
            "driftloop_job_duration_seconds",
            "Time one periodic job run took, by task.",
            ["task"],
            buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0),
            registry=registry,
        )


def metrics_response(registry: CollectorRegistry) -> Response:
    """The text exposition of ``registry``."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other is counted as ``other``."""


class HTTPMetricsMiddleware:
    """Pure ASGI middleware counting requests per route template (never per raw path)."""

    def __init__(self, app: ASGIApp, metrics: MonitorMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            handler = _route_template(scope)
            method = scope.get("method", "GET")
            if method not in HTTP_METHODS:  # any client may invent methods: keep labels bounded
                method = "other"
            self.metrics.http_requests.labels(handler, method, str(code)).inc()
            self.metrics.http_seconds.labels(handler, method).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the scope it was handed; its template, never the
    # raw path, keeps the label bounded.
    route = scope.get("route")
    return str(getattr(route, "path", None) or "other")
