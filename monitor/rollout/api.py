"""Rollout endpoints: the routing policy (sidecars), the gate (Flagger, Argo Rollouts), the
rollout's state and history, and the operator's actions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from driftloop.contract import Identifier
from driftloop.errors import ValidationError
from driftloop.monitor.auth import require
from driftloop.monitor.registry import get_model
from driftloop.monitor.rollout.routing import policy_json, read_policy
from driftloop.monitor.rollout.service import (
    RolloutConflictError,
    current_rollout,
    manual,
    start_rollout,
)
from driftloop.monitor.rollout.views import decisions_json, gate_verdict, rollout_json
from driftloop.monitor.state import MonitorState, get_state
from driftloop.settings import RolloutSettings, Scope
from driftloop.store import Rollout

__all__ = ["RolloutAction", "router"]

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
    200: {"description": "The rollout may proceed"},
    404: {"description": "Unknown model"},
    409: {"description": "The rollout is paused"},
    412: {"description": "The rollout failed, was rolled back, or does not exist"},
}


@router.get("/v1/models/{name}/gate", responses=GATE_RESPONSES)
@router.post("/v1/models/{name}/gate", responses=GATE_RESPONSES, include_in_schema=True)
def get_gate(name: str, state: MonitorState = Depends(get_state)) -> JSONResponse:
    """The rollout's verdict: 2xx only when it may proceed (Argo web metric on GET; Flagger
    webhooks POST their own payload, which is ignored)."""
    with state.sessions() as session:
        model = get_model(session, name)
        code, body = gate_verdict(current_rollout(session, model), model)
    return JSONResponse(body, status_code=code)


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
