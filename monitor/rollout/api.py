"""Rollout endpoints: the routing policy (sidecars), the gate (Flagger, Argo Rollouts), the
rollout's state and history, and the operator's actions."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from driftloop.contract import Identifier
from driftloop.errors import ValidationError
from driftloop.monitor.rollout.routing import policy_json, read_policy
from driftloop.monitor.rollout.service import (
    RolloutConflictError,
    current_rollout,
    manual,
    start_rollout,
)
from driftloop.monitor.rollout.views import decisions_json, gate_verdict, rollout_json
from driftloop.settings import RolloutSettings, Scope
from driftloop.store import Rollout
from driftloop.store.registry import get_model
from driftloop.web.auth import require
from driftloop.web.state import MonitorState, get_state

__all__ = ["RolloutAction", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["rollout"])


class RolloutAction(BaseModel):
    """Body of ``POST /v1/models/{name}/rollout``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["start", "pause", "resume", "promote", "rollback"]
    version: Identifier | None = Field(None, description="The challenger version (start only).")
    reason: Annotated[str, StringConstraints(max_length=1000)] | None = None
    config: dict[str, Any] | None = Field(
        None, description='Overrides of the rollout settings (start only), e.g. {"margin": 0.02}.'
    )


def _check_overrides(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return config
    unknown = sorted(set(config) - set(RolloutSettings.model_fields))
    if unknown:
        raise ValidationError(
            f"unknown rollout settings {unknown}; known: {sorted(RolloutSettings.model_fields)}"
        )
    try:
        RolloutSettings.model_validate(config)
    except ValueError as exc:
        raise ValidationError(f"invalid rollout settings: {exc}") from exc
    return config


@router.get(
    "/v1/models/{name}/routing",
    responses={404: {"description": "Unknown model, or no routing policy"}},
)
def get_routing(name: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """The routing policy sidecars poll (mode, challenger weight, versions, revision)."""
    with state.sessions() as session:
        model = get_model(session, name)
        row = read_policy(session, model)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"model {name!r} has no routing policy")
        return policy_json(model, row)


GATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Verdict pass (phase=rollback: fail, roll back); always with provider=argo"
    },
    404: {"description": "Unknown model"},
    409: {"description": "Verdict inconclusive: paused, or not proven yet (phase=promotion)"},
    412: {"description": "Verdict fail: rolled back, superseded, a failing check, or no rollout"},
    422: {"description": "Unknown phase or provider"},
}

GatePhase = Literal[
    "step",
    "promotion",
    "rollback",
    "pre-rollout",
    "rollout",
    "confirm-rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
]


class FlaggerPayload(BaseModel):
    """What Flagger POSTs to a webhook (``CanaryWebhookPayload``); read for the log only."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    namespace: str | None = None
    phase: str | None = None
    checksum: str | None = None
    metadata: dict[str, str] | None = None


async def _caller(request: Request) -> FlaggerPayload | None:
    body = await request.body()
    if not body:
        return None
    try:
        return FlaggerPayload.model_validate_json(body)
    except ValueError:
        log.info(
            "gate: ignoring a webhook body that is not Flagger's payload (%d bytes)", len(body)
        )
        return None


@router.get("/v1/models/{name}/gate", responses=GATE_RESPONSES)
@router.post("/v1/models/{name}/gate", responses=GATE_RESPONSES, include_in_schema=True)
async def get_gate(
    name: str,
    request: Request,
    phase: GatePhase = Query(
        "step", description="step (default), promotion, rollback, or a Flagger hook type."
    ),
    provider: Literal["flagger", "argo"] | None = Query(
        None,
        description="argo: always 200, the verdict in the body (Argo counts non-2xx as errors).",
    ),
    state: MonitorState = Depends(get_state),
) -> JSONResponse:
    """The rollout's verdict for ``phase``: ``pass | fail | inconclusive`` in the body and as the
    status code (200 / 412 / 409; ``phase=rollback`` answers 200 only on ``fail``). Argo Rollouts'
    web provider GETs it (``provider=argo``); Flagger's webhooks POST their payload."""
    caller = await _caller(request)
    code, body = await run_in_threadpool(_gate, state, name, phase, provider)
    if caller is not None:
        body["caller"] = {"name": caller.name, "namespace": caller.namespace, "phase": caller.phase}
    return JSONResponse(body, status_code=code)


def _gate(
    state: MonitorState, name: str, phase: str, provider: str | None
) -> tuple[int, dict[str, Any]]:
    with state.sessions() as session:
        model = get_model(session, name)
        return gate_verdict(current_rollout(session, model), model, phase, provider)


@router.get(
    "/v1/models/{name}/rollout", responses={404: {"description": "Unknown model, or no rollout"}}
)
def get_rollout(name: str, state: MonitorState = Depends(get_state)) -> dict[str, Any]:
    """The newest rollout with its decision history and evidence, and the earlier rollouts."""
    defaults = state.settings.rollout
    with state.sessions() as session:
        model = get_model(session, name)
        rollout = current_rollout(session, model)
        if rollout is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"model {name!r} has no rollout")
        earlier = session.scalars(
            select(Rollout)
            .where(Rollout.model_id == model.id, Rollout.id != rollout.id)
            .order_by(Rollout.id.desc())
            .limit(50)
        )
        return {
            "model": name,
            "rollout": rollout_json(rollout, defaults),
            "decisions": decisions_json(session, rollout),
            "earlier": [
                {
                    "id": r.id,
                    "champion": r.champion_version,
                    "challenger": r.challenger_version,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "ended_at": None if r.ended_at is None else r.ended_at.isoformat(),
                }
                for r in earlier
            ],
        }


@router.post(
    "/v1/models/{name}/rollout",
    dependencies=[Depends(require(Scope.admin))],
    responses={
        404: {"description": "Unknown model"},
        409: {"description": "The action does not fit the rollout's state"},
        422: {"description": "Invalid action, version or settings"},
    },
)
def post_rollout(
    name: str, body: RolloutAction, state: MonitorState = Depends(get_state)
) -> dict[str, Any]:
    """Start a rollout of a challenger, or pause, resume, promote or roll back the current one."""
    defaults = state.settings.rollout
    now = state.clock.now()
    try:
        with state.sessions.begin() as session:
            model = get_model(session, name)
            if body.action == "start":
                if body.version is None:
                    raise ValidationError("action 'start' needs the challenger 'version'")
                rollout = start_rollout(
                    session,
                    model,
                    body.version,
                    now,
                    config=_check_overrides(body.config),
                    actor="admin",
                    defaults=defaults,
                )
            else:
                if body.version is not None or body.config is not None:
                    raise ValidationError(f"action {body.action!r} takes no version or config")
                rollout = manual(
                    session, model, body.action, now, reason=body.reason, defaults=defaults
                )
            return {
                "model": name,
                "rollout": rollout_json(rollout, defaults),
                "decisions": decisions_json(session, rollout),
            }
    except RolloutConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
