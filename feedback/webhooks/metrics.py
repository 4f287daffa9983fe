"""Webhook metrics on the injected registry: attempts as they happen, the outbox on each scrape.

The outbox gauges are read from the database by a custom collector, so every replica reports
the same numbers whichever one is the leader delivering.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from driftloop.store import OutboxMessage, WebhookEndpoint

log = logging.getLogger(__name__)

ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WebhookMetrics:
    """Counters of delivery attempts and their latency, plus the outbox collector."""

    def __init__(self, registry: CollectorRegistry, sessions: sessionmaker[Session]) -> None:
        self.deliveries = Counter(
            "driftloop_webhook_deliveries",
            "Webhook delivery attempts by result: delivered, retrying (failed, will retry), "
            "failed (failed, no retry left).",
            ["result"],
            registry=registry,
        )
        self.attempt_seconds = Histogram(
            "driftloop_webhook_attempt_duration_seconds",
            "Time one webhook POST took, until the answer or the error.",
            buckets=ATTEMPT_BUCKETS,
            registry=registry,
        )
        registry.register(OutboxCollector(sessions))


class OutboxCollector(Collector):
    """Gauges of the outbox read at scrape time: pending and failed messages, disabled endpoints."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields (no database access at registration)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Read the outbox and endpoint counts; nothing when the database is unavailable."""
        try:
            with self.sessions() as session:
                by_status = dict(
                    session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    ).all()
                )
                disabled = session.scalar(
                    select(func.count())
                    .select_from(WebhookEndpoint)
                    .where(WebhookEndpoint.enabled.is_(False))
                )
        except SQLAlchemyError:
            log.warning("outbox metrics unavailable: database error", exc_info=True)
            return []
        pending, failed, off = self._families()
        pending.add_metric([], float(by_status.get("pending", 0)))
        failed.add_metric([], float(by_status.get("failed", 0)))
        off.add_metric([], float(disabled or 0))
        return [pending, failed, off]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "driftloop_webhook_pending_messages",
                "Webhook messages in the outbox not yet delivered (including held ones).",
            ),
            GaugeMetricFamily(
                "driftloop_webhook_failed_messages",
                "Webhook messages that exhausted their retries (replay them to try again).",
            ),
            GaugeMetricFamily(
                "driftloop_webhook_endpoints_disabled",
                "Webhook endpoints disabled after failing too long (re-enable through the API).",
            ),
        )
