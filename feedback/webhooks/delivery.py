"""The delivery worker: POSTs due outbox messages, logs every attempt, schedules retries.

The HTTP call happens outside any database transaction (a slow receiver must not hold locks);
the message is claimed first by moving its ``next_attempt_at`` past the attempt's timeout, so a
crash mid-attempt leads to one more attempt later, never to a lost message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from driftloop.clock import Clock
from driftloop.errors import ConfigurationError
from driftloop.feedback.webhooks.metrics import WebhookMetrics
from driftloop.feedback.webhooks.outbox import DELIVERED, FAILED, PENDING, attempt_count
from driftloop.feedback.webhooks.signing import configured_secrets, headers
from driftloop.outbound import OutboundTargetError, check_resolved
from driftloop.settings import Settings
from driftloop.store import DeliveryAttempt, OutboxMessage, WebhookEndpoint
from driftloop.store.dialect import dialect_of
from driftloop.urls import redact_url

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

log = logging.getLogger(__name__)

SecretsFor = Callable[[Session, OutboxMessage], Sequence[str]]
"""Returns the active secrets a message is signed with (policy's, else the settings')."""

Sender = Callable[[str, str, str], "AttemptResult"]
"""Sends one message of a kind that is not a signed webhook POST: ``(url, message id, body)``.

Keyed by ``event_type`` in :attr:`Deliverer.senders` (the MLflow write-back is one); the outbox,
claiming, retries and the attempt log are the same as for webhooks."""

MAX_ERROR_CHARS = 500

NO_RESPONSE = "no HTTP response from the receiver (unreachable, refused, timed out or closed)"
"""The one reason stored for every transport failure."""


def _status_reason(status_code: int) -> str:
    if 300 <= status_code < 400:
        return f"HTTP {status_code} (redirects are not followed)"
    return f"HTTP {status_code}"


DELIVER_JOB = "webhooks.deliver"
"""Name of the leader's periodic job that sends due outbox messages."""


def kick(state: MonitorState) -> None:
    """Run the delivery job now in the background, so a new message need not wait a tick."""
    if state.settings.jobs.enabled and DELIVER_JOB in state.jobs.jobs:
        threading.Thread(
            target=state.jobs.run_job, args=(DELIVER_JOB, state), name="webhook-kick", daemon=True
        ).start()


@dataclass(frozen=True)
class AttemptResult:
    """What one POST gave: an HTTP status, or the error that prevented one."""

    status_code: int | None
    error: str | None
    duration_seconds: float

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(
    attempts: int, schedule: Sequence[float], jitter: float, rng: random.Random
) -> float | None:
    """Seconds before retry number ``attempts`` (1-based), jittered; None when none is left."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (1.0 + rng.uniform(-jitter, jitter))


class Deliverer:
    """Sends due messages from the outbox with the shared HTTP client."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        http: Callable[[], httpx.Client] | httpx.Client,
        clock: Clock,
        metrics: WebhookMetrics | None = None,
        secrets_for: SecretsFor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self._http = http
        self.clock = clock
        self.metrics = metrics
        self.secrets_for = secrets_for or (lambda _s, _m: configured_secrets(settings))
        self.rng = rng or random.Random()
        self.senders: dict[str, Sender] = {}

    @property
    def http(self) -> httpx.Client:
        """The client used for POSTs (looked up each time: the app may replace it at start-up)."""
        return self._http() if callable(self._http) else self._http

    def due(self, limit: int | None = None) -> list[int]:
        """Ids of messages due now whose endpoint is enabled, oldest due first."""
        now = self.clock.now()
        with self.sessions() as session:
            rows = session.scalars(
                select(OutboxMessage.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == OutboxMessage.endpoint_id)
                .where(
                    OutboxMessage.status == PENDING,
                    OutboxMessage.next_attempt_at <= now,
                    WebhookEndpoint.enabled.is_(True),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit or self.settings.webhooks.batch_size)
            )
            return list(rows)

    def run(self) -> int:
        """Attempt every due message once; returns how many attempts were made."""
        made = 0
        for message_id in self.due():
            if self.attempt(message_id):
                made += 1
        return made

    def attempt(self, message_id: int) -> bool:
        """Claim, POST and record one message; False when it was no longer due."""
        cfg = self.settings.webhooks
        now = self.clock.now()
        with self.sessions.begin() as session:
            message = session.get(
                OutboxMessage, message_id, with_for_update=dialect_of(session).locks_rows
            )
            if message is None or message.status != PENDING or message.next_attempt_at is None:
                return False
            if message.next_attempt_at > now:
                return False
            endpoint = session.get(WebhookEndpoint, message.endpoint_id)
            if endpoint is None or not endpoint.enabled:
                return False
            # Claim: another run (or a restarted leader) will not send it during this attempt.
            message.next_attempt_at = now + timedelta(seconds=cfg.timeout_seconds + 5)
            url, msg_id, body = endpoint.url, message.webhook_id, message.body
            sender = self.senders.get(message.event_type)
            config_error: str | None = None
            secret_list: list[str] = []
            if sender is None:
                try:
                    secret_list = list(self.secrets_for(session, message))
                except ConfigurationError as exc:
                    config_error = str(exc)
                if not secret_list and config_error is None:
                    config_error = "no webhook secret configured (DRIFTLOOP_WEBHOOK_SECRET)"
        if sender is not None:
            result = sender(url, msg_id, body)
        elif secret_list and config_error is None:
            result = self._post(url, msg_id, body, secret_list, now)
        else:
            result = AttemptResult(None, config_error, 0.0)
        self._record(message_id, result, now)
        return True

    def _post(
        self, url: str, msg_id: str, body: str, secret_list: Sequence[str], now: datetime
    ) -> AttemptResult:
        cfg = self.settings.webhooks
        timeout = httpx.Timeout(cfg.timeout_seconds, connect=cfg.connect_timeout_seconds)
        try:
            # The name may resolve to a metadata address even when the URL passed validation.
            check_resolved(url, allow_private=cfg.allow_private_targets)
        except OutboundTargetError as exc:
            return AttemptResult(None, f"refused target: {exc}"[:MAX_ERROR_CHARS], 0.0)
        start = time.perf_counter()
        try:
            response = self.http.post(
                url,
                content=body.encode(),
                headers={**headers(msg_id, now, body, secret_list), "user-agent": "driftloop"},
                timeout=timeout,
                follow_redirects=False,  # a redirect could lead to an address validation refuses
            )
        except Exception as exc:  # any failure is one failed attempt, logged and retried
            elapsed = time.perf_counter() - start
            # One reason for every transport failure: the stored log (shown by the API) must not
            # tell a refused connection from a timeout, or webhooks become a port scanner.
            log.debug("webhook %s to %s: %s", msg_id, redact_url(url), type(exc).__name__)
            return AttemptResult(None, NO_RESPONSE, elapsed)
        elapsed = time.perf_counter() - start
        # Status only, never the body: a receiver's page may hold anything (even secrets).
        error = None if response.is_success else _status_reason(response.status_code)
        return AttemptResult(response.status_code, error, elapsed)

    def _record(self, message_id: int, result: AttemptResult, started: datetime) -> None:
        cfg = self.settings.webhooks
        now = self.clock.now()
        with self.sessions.begin() as session:
            message = session.get(
                OutboxMessage, message_id, with_for_update=dialect_of(session).locks_rows
            )
            if message is None:
                return
            endpoint = session.get(WebhookEndpoint, message.endpoint_id)
            number = attempt_count(session, message) + 1
            message.attempts += 1
            if result.ok:
                outcome = DELIVERED
                message.status = DELIVERED
                message.delivered_at = now
                message.next_attempt_at = None
                message.last_error = None
                if endpoint is not None:
                    endpoint.failing_since = None
                    endpoint.updated_at = now
            else:
                message.last_error = result.error
                delay = retry_delay(
                    message.attempts, cfg.retry_schedule_seconds, cfg.jitter, self.rng
                )
                if delay is None:
                    outcome = FAILED
                    message.status = FAILED
                    message.next_attempt_at = None
                else:
                    outcome = "retrying"
                    message.next_attempt_at = now + timedelta(seconds=delay)
                if endpoint is not None:
                    self._endpoint_failed(endpoint, now)
            session.add(
                DeliveryAttempt(
                    message_id=message.id,
                    attempt=number,
                    started_at=started,
                    duration_seconds=result.duration_seconds,
                    status_code=result.status_code,
                    error=result.error,
                    outcome=outcome,
                )
            )
            webhook_id = message.webhook_id
        if self.metrics is not None:
            self.metrics.deliveries.labels(outcome).inc()
            if result.status_code is not None or result.duration_seconds > 0:
                self.metrics.attempt_seconds.observe(result.duration_seconds)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "webhook %s attempt %d: %s", webhook_id, number, result.error or "delivered")

    def _endpoint_failed(self, endpoint: WebhookEndpoint, now: datetime) -> None:
        endpoint.updated_at = now
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            return
        failing = (now - endpoint.failing_since).total_seconds()
        if endpoint.enabled and failing >= self.settings.webhooks.disable_after_seconds:
            endpoint.enabled = False
            endpoint.disabled_at = now
            endpoint.disabled_reason = (
                f"no successful delivery since {endpoint.failing_since.isoformat()} "
                f"({failing / 86400:.1f} days)"
            )
            log.error(
                "webhook endpoint %s disabled: %s",
                redact_url(endpoint.url),
                endpoint.disabled_reason,
            )
