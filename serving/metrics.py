"""Metrics of the sidecar and the middleware, on an injected registry.

``prometheus_client`` is imported inside :func:`make_metrics`, never at module import: in a
BentoML worker the library must be first imported after BentoML has switched it to multiprocess
mode, and ``driftloop.serving`` is imported by the user's service module before that happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class ShippingMetrics:
    """Counters of the capture pipeline: captured, sent, spooled, replayed, dropped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.captured = Counter(
            "driftloop_records_captured_total",
            "Records taken in by capture: one per prediction row, and one per request lost before "
            "its rows were known; sent + dropped = captured once the log is drained.",
            ["model"],
            registry=registry,
        )
        self.sent = Counter(
            "driftloop_records_sent_total",
            "Records acknowledged by the monitor (including replayed ones).",
            ["model"],
            registry=registry,
        )
        self.spooled = Counter(
            "driftloop_records_spooled_total",
            "Records that waited in the capture log for the monitor (a failed delivery, or left "
            "by an earlier process).",
            ["model"],
            registry=registry,
        )
        self.replayed = Counter(
            "driftloop_records_replayed_total",
            "Records delivered after waiting in the capture log (see spooled).",
            ["model"],
            registry=registry,
        )
        self.dropped = Counter(
            "driftloop_records_dropped_total",
            "Records (or whole requests) not recorded, by reason (no_rows, not_json, queue_full, "
            "too_large, capture_error, rejected, spool_full, spool_torn, spool_corrupt, shutdown).",
            ["model", "reason"],
            registry=registry,
        )
        self.requests = Counter(
            "driftloop_capture_requests_total",
            "Requests with a body seen by capture, by result: recorded (at least one record) "
            "or dropped (counted in driftloop_records_dropped_total under its reason).",
            ["model", "result"],
            registry=registry,
        )
        self.spool_errors = Counter(
            "driftloop_spool_write_errors_total",
            "Captured exchanges the on-disk log could not store (a full disk): kept in memory, "
            "not crash-safe, until the log takes writes again.",
            ["model"],
            registry=registry,
        )
        self.spool_bytes = Gauge(
            "driftloop_spool_bytes",
            "Bytes in the capture log waiting for the monitor (a failed delivery, a backlog left "
            "by an earlier process, or over 1 MiB not read yet); 0 while deliveries keep up.",
            ["model"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "driftloop_capture_queue_responses",
            "Responses waiting in the capture queue.",
            ["model"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.ship_seconds = Histogram(
            "driftloop_ship_duration_seconds",
            "Time of one POST of a batch to the monitor, by result (ok, retry, rejected).",
            ["model", "result"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


class ProxyMetrics:
    """Request counters and latency of the sidecar proxy, upstream errors, shadow copies."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "driftloop_sidecar_requests_total",
            "Requests answered by the sidecar, by variant that answered and status code.",
            ["model", "variant", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "driftloop_sidecar_request_duration_seconds",
            "Time from request to the last byte of the response, at the sidecar.",
            ["model", "variant", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "driftloop_sidecar_upstream_errors_total",
            "Upstream failures answered with 502/504, by reason (connect, timeout, protocol).",
            ["model", "variant", "reason"],
            registry=registry,
        )
        self.shadow = Counter(
            "driftloop_sidecar_shadow_requests_total",
            "Shadow copies, by outcome (ok, error, dropped).",
            ["model", "outcome"],
            registry=registry,
        )
        self.policy_polls = Counter(
            "driftloop_sidecar_policy_polls_total",
            "Polls of the routing policy, by result (updated, unchanged, absent, error).",
            ["model", "result"],
            registry=registry,
        )
        self.policy_revision = Gauge(
            "driftloop_sidecar_policy_revision",
            "Revision of the routing policy in force (0: the flags).",
            ["model"],
            registry=registry,
            multiprocess_mode="max",
        )


def make_registry() -> Any:
    """A fresh, private ``CollectorRegistry`` (never the global one)."""
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def add_process_metrics(registry: Any, version: str) -> None:
    """CPU, memory and build information of this process, like the monitor exports."""
    from prometheus_client import Info, PlatformCollector, ProcessCollector

    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    Info("driftloop_build", "Driftloop build information.", registry=registry).info(
        {"version": version, "component": "sidecar"}
    )
