"""The durable outbox: messages written in the caller's transaction, read by the delivery worker.

``enqueue`` never commits: the caller writes the trigger and its message in one transaction, so
either both exist or neither does. ``replay`` puts a message back in the queue with the same
``webhook-id`` and body (receivers deduplicate on the id).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from driftloop.errors import DriftloopError
from driftloop.feedback.webhooks.signing import new_message_id
from driftloop.store import DeliveryAttempt, Model, OutboxMessage, WebhookEndpoint

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


class UnknownMessageError(DriftloopError, LookupError):
    """No outbox message has this webhook id."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"unknown webhook message {webhook_id!r}")
        self.webhook_id = webhook_id


class UnknownEndpointError(DriftloopError, LookupError):
    """No webhook endpoint has this id."""

    def __init__(self, endpoint_id: int) -> None:
        super().__init__(f"unknown webhook endpoint {endpoint_id!r}")
        self.endpoint_id = endpoint_id


def encode_body(payload: dict[str, Any]) -> str:
    """The exact bytes sent and signed: compact, ASCII-only JSON with sorted keys."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def endpoint_for(session: Session, url: str, now: datetime) -> WebhookEndpoint:
    """The endpoint row for ``url``, created (enabled) on first use."""
    row = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url == url))
    if row is None:
        row = WebhookEndpoint(url=url, enabled=True, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
    return row


def enqueue(
    session: Session,
    *,
    model: Model,
    url: str,
    payload: dict[str, Any],
    now: datetime,
    event_type: str = "model.retrain",
    trigger_id: int | None = None,
    webhook_id: str | None = None,
) -> OutboxMessage:
    """Add a message due now to the outbox, in the caller's transaction."""
    endpoint = endpoint_for(session, url, now)
    message = OutboxMessage(
        webhook_id=webhook_id or new_message_id(),
        model_id=model.id,
        trigger_id=trigger_id,
        endpoint_id=endpoint.id,
        event_type=event_type,
        body=encode_body(payload),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def get_message(session: Session, webhook_id: str) -> OutboxMessage:
    """The message with this ``webhook-id``; raises :class:`UnknownMessageError`."""
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.webhook_id == webhook_id))
    if message is None:
        raise UnknownMessageError(webhook_id)
    return message


def replay(session: Session, webhook_id: str, now: datetime) -> OutboxMessage:
    """Queue a message again from the first step of the retry schedule, due now."""
    message = get_message(session, webhook_id)
    message.status = PENDING
    message.attempts = 0
    message.next_attempt_at = now
    session.flush()
    return message


def enable_endpoint(session: Session, endpoint_id: int, now: datetime) -> WebhookEndpoint:
    """Re-enable an endpoint; its held messages become due now."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise UnknownEndpointError(endpoint_id)
    endpoint.enabled = True
    endpoint.failing_since = None
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.updated_at = now
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.endpoint_id == endpoint_id, OutboxMessage.status == PENDING)
        .values(next_attempt_at=now)
    )
    session.flush()
    return endpoint


def attempts_of(session: Session, message: OutboxMessage) -> list[DeliveryAttempt]:
    """Every attempt at delivering ``message``, oldest first."""
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_id == message.id)
            .order_by(DeliveryAttempt.id)
        )
    )


def attempt_count(session: Session, message: OutboxMessage) -> int:
    """How many attempts were made at ``message`` over its life (replays included)."""
    count = session.scalar(
        select(func.count())
        .select_from(DeliveryAttempt)
        .where(DeliveryAttempt.message_id == message.id)
    )
    return int(count or 0)


def describe_message(
    session: Session, message: OutboxMessage, *, with_attempts: bool = False
) -> dict[str, Any]:
    """The JSON view of a message for the API."""
    endpoint = session.get(WebhookEndpoint, message.endpoint_id)
    out: dict[str, Any] = {
        "webhook_id": message.webhook_id,
        "event_type": message.event_type,
        "model_id": message.model_id,
        "trigger_id": message.trigger_id,
        "url": endpoint.url if endpoint else None,
        "status": message.status,
        "attempts": message.attempts,
        "next_attempt_at": _iso(message.next_attempt_at),
        "last_error": message.last_error,
        "created_at": _iso(message.created_at),
        "delivered_at": _iso(message.delivered_at),
    }
    if with_attempts:
        out["body"] = json.loads(message.body)
        out["attempt_log"] = [
            {
                "attempt": a.attempt,
                "started_at": _iso(a.started_at),
                "duration_seconds": a.duration_seconds,
                "status_code": a.status_code,
                "error": a.error,
                "outcome": a.outcome,
            }
            for a in attempts_of(session, message)
        ]
    return out


def describe_endpoint(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The JSON view of an endpoint for the API."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "enabled": endpoint.enabled,
        "failing_since": _iso(endpoint.failing_since),
        "disabled_at": _iso(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
