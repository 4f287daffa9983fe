"""Retraining endpoints on the models API: the policy, on-demand triggers and the trigger log."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.feedback.triggers.evaluate import CooldownError, Fired, cooldown_until, manual
from driftloop.feedback.triggers.metrics import count_trigger
from driftloop.feedback.triggers.policy import (
    RetrainingPolicy,
    describe_policy,
    load_policy,
    save_policy,
)
from driftloop.feedback.webhooks.delivery import kick
from driftloop.outbound import check_webhook_url
from driftloop.settings import Scope
from driftloop.store import Model, OutboxMessage, RetrainTrigger
from driftloop.store.registry import get_model
from driftloop.urls import redact_document
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

router = APIRouter(tags=["retraining"])


class RetrainRequest(BaseModel):
    """Body of ``POST /v1/models/{name}/retrain`` (all optional)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000, description="Why, in the trigger's evidence.")
    force: bool = Field(False, description="Fire even within the cooldown.")


@router.get("/v1/models/{name}/retraining", responses={404: {"description": "Unknown model"}})
def get_policy(name: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """The model's retraining policy with effective defaults (secrets are never shown)."""
    with state.sessions() as session:
        model = get_model(session, name)
        policy, updated = load_policy(session, model)
        return _with_status(
            session, state, model, policy, describe_policy(policy, state.settings, updated)
        )


@router.put(
    "/v1/models/{name}/retraining",
    dependencies=[Depends(require(Scope.admin))],
    responses={404: {"description": "Unknown model"}, 422: {"description": "Invalid policy"}},
)
def put_policy(
    name: str, policy: RetrainingPolicy, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """Replace the model's retraining policy; open incidents and the schedule start afresh."""
    if policy.webhook_url is not None:
        check_webhook_url(
            policy.webhook_url, allow_private=state.settings.webhooks.allow_private_targets
        )
    with state.sessions.begin() as session:
        model = get_model(session, name)
        row = save_policy(session, model, policy, state.clock.now())
        out = describe_policy(policy, state.settings, row.updated_at)
        return _with_status(session, state, model, policy, out)


@router.post(
    "/v1/models/{name}/retrain",
    dependencies=[Depends(require(Scope.admin))],
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "Unknown model"},
        409: {"description": "In cooldown after the previous trigger (use force)"},
    },
)
def post_retrain(
    name: str,
    body: RetrainRequest | None = Body(None),
    state: MonitorState = Depends(get_state),
) -> dict[str, Any]:
    """Fire a retraining trigger now: snapshot, trigger log, and a webhook queued for delivery."""
    request = body or RetrainRequest()
    with state.sessions.begin() as session:
        model = get_model(session, name)
        try:
            fired = manual(
                session,
                model,
                state.settings,
                state.clock.now(),
                note=request.note,
                force=request.force,
            )
        except CooldownError as exc:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail=str(exc), headers=_retry_after(state, exc)
            ) from exc
        out = describe_fired(session, fired)
    count_trigger(state.registry, name, "manual")
    kick(state)
    return out


@router.get("/v1/models/{name}/triggers", responses={404: {"description": "Unknown model"}})
def list_triggers(
    name: str, limit: int = Query(50, ge=1, le=1000), state: MonitorState = Depends(get_state)
) -> list[dict[str, Any]]:
    """The model's retraining triggers, newest first: reason, evidence, snapshot, delivery."""
    with state.sessions() as session:
        model = get_model(session, name)
        rows = session.scalars(
            select(RetrainTrigger)
            .where(RetrainTrigger.model_id == model.id)
            .order_by(RetrainTrigger.id.desc())
            .limit(limit)
        )
        return [describe_trigger(session, t) for t in rows]


def describe_trigger(session: Session, trigger: RetrainTrigger) -> dict[str, Any]:
    """The JSON view of a trigger and its webhook's delivery state."""
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.trigger_id == trigger.id))
    out = {
        "id": trigger.id,
        "reason": trigger.reason,
        "fired_at": trigger.fired_at.isoformat(),
        "evidence": trigger.evidence,
        "snapshot_id": trigger.snapshot_id,
        "dataset": trigger.manifest,
        "webhook_id": None if message is None else message.webhook_id,
        "delivery": None if message is None else message.status,
    }
    return cast(dict[str, Any], redact_document(out))


def describe_fired(session: Session, fired: Fired) -> dict[str, Any]:
    """The JSON answer to a trigger that just fired."""
    return describe_trigger(session, fired.trigger)


def retraining_section(state: MonitorState) -> Any:
    """``GET /v1/models/{name}`` section: the policy summary and the last trigger."""

    def section(session: Session, model: Model) -> dict[str, Any]:
        policy, updated = load_policy(session, model)
        return _with_status(
            session, state, model, policy, describe_policy(policy, state.settings, updated)
        )

    return section


def _with_status(
    session: Session,
    state: MonitorState,
    model: Model,
    policy: RetrainingPolicy,
    out: dict[str, Any],
) -> dict[str, Any]:
    last, until = cooldown_until(session, model, policy, state.settings)
    out["last_trigger"] = None if last is None else describe_trigger(session, last)
    now = state.clock.now()
    out["cooldown_until"] = until.isoformat() if until is not None and until > now else None
    return cast(dict[str, Any], redact_document(out))  # webhook URLs may carry credentials


def _retry_after(state: MonitorState, exc: CooldownError) -> dict[str, str]:
    seconds = max(1, int((exc.until - state.clock.now()).total_seconds()) + 1)
    return {"Retry-After": str(seconds)}
