"""``/v1/webhooks``: the delivery log, replays, and endpoints (re-enable after a long outage)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import select

from driftloop.feedback.webhooks.delivery import kick
from driftloop.feedback.webhooks.outbox import (
    STATUSES,
    UnknownEndpointError,
    UnknownMessageError,
    describe_endpoint,
    describe_message,
    enable_endpoint,
    get_message,
    replay,
)
from driftloop.settings import Scope
from driftloop.store import Model, OutboxMessage, WebhookEndpoint
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

router = APIRouter(tags=["webhooks"], dependencies=[Depends(require(Scope.admin))])


@router.get("/v1/webhooks/deliveries")
def list_deliveries(
    status_: str | None = Query(
        None,
        alias="status",
        json_schema_extra={"enum": list(STATUSES)},  # documented; the handler names a bad one
        description="pending, delivered or failed",
    ),
    model: str | None = Query(None, description="Only this model's messages."),
    limit: int = Query(100, ge=1, le=1000),
    state: MonitorState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Webhook messages, newest first, with their delivery state."""
    if status_ is not None and status_ not in STATUSES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"status {status_!r} is not one of {', '.join(STATUSES)}",
        )
    with state.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status_ is not None:
            query = query.where(OutboxMessage.status == status_)
        if model is not None:
            query = query.join(Model, Model.id == OutboxMessage.model_id).where(Model.name == model)
        return [describe_message(session, m) for m in session.scalars(query)]


@router.get("/v1/webhooks/deliveries/{webhook_id}", responses={404: {"description": "Unknown"}})
def get_delivery(webhook_id: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """One message: its body and every delivery attempt (status, latency, error)."""
    with state.sessions() as session:
        try:
            message = get_message(session, webhook_id)
        except UnknownMessageError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
        return describe_message(session, message, with_attempts=True)


@router.post(
    "/v1/webhooks/deliveries/{webhook_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"description": "Unknown message"}},
)
def replay_delivery(webhook_id: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """Send a message again (same ``webhook-id`` and body), from the start of the schedule."""
    with state.sessions.begin() as session:
        try:
            message = replay(session, webhook_id, state.clock.now())
        except UnknownMessageError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
        out = describe_message(session, message)
    kick(state)
    return out


@router.get("/v1/webhooks/endpoints")
def list_endpoints(state: MonitorState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every receiver URL used so far and whether it is enabled."""
    with state.sessions() as session:
        rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
        return [describe_endpoint(e) for e in rows]


@router.post(
    "/v1/webhooks/endpoints/{endpoint_id}/enable",
    responses={404: {"description": "Unknown endpoint"}},
)
def enable(
    endpoint_id: int = Path(ge=1, le=2**31 - 1), state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """Re-enable an endpoint disabled after failing; its held messages are sent now."""
    with state.sessions.begin() as session:
        try:
            endpoint = enable_endpoint(session, endpoint_id, state.clock.now())
        except UnknownEndpointError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
        out = describe_endpoint(endpoint)
    kick(state)
    return out
