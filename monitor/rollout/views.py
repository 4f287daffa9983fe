"""JSON views of rollouts: the state, the decision history, the gate verdict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.monitor.rollout.decide import plan
from driftloop.monitor.rollout.service import effective_config
from driftloop.settings import RolloutSettings
from driftloop.store import Model, Rollout, RolloutDecision

__all__ = ["decisions_json", "gate_verdict", "rollout_json", "section"]


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def rollout_json(rollout: Rollout, defaults: RolloutSettings | None = None) -> dict[str, Any]:
    """One rollout: versions, status, where it stands in its plan, the latest evidence."""
    config = effective_config(rollout, defaults)
    steps = plan(config)
    step = steps[min(rollout.step, len(steps) - 1)]
    return {
        "id": rollout.id,
        "champion": rollout.champion_version,
        "challenger": rollout.challenger_version,
        "status": rollout.status,
        "step": rollout.step,
        "mode": step.mode,
        "weight": step.weight,
        "plan": [{"mode": s.mode, "weight": s.weight} for s in steps],
        "started_at": _iso(rollout.started_at),
        "step_started_at": _iso(rollout.step_started_at),
        "ended_at": _iso(rollout.ended_at),
        "evaluated_at": _iso(rollout.evaluated_at),
        "overrides": rollout.config,
        "config": config.model_dump(),
        "evidence": rollout.evidence,
    }


def decisions_json(session: Session, rollout: Rollout) -> list[dict[str, Any]]:
    """The rollout's decisions, oldest first, each with its evidence."""
    rows = session.scalars(
        select(RolloutDecision)
        .where(RolloutDecision.rollout_id == rollout.id)
        .order_by(RolloutDecision.id)
    )
    return [
        {
            "decision": d.decision,
            "actor": d.actor,
            "reason": d.reason,
            "from_step": d.from_step,
            "to_step": d.to_step,
            "decided_at": _iso(d.decided_at),
            "evidence": d.evidence,
        }
        for d in rows
    ]


def gate_verdict(rollout: Rollout | None, model: Model) -> tuple[int, dict[str, Any]]:
    """The status code and body of ``GET /v1/models/{name}/gate``.

    200 while the rollout may proceed (active with nothing failing, or promoted); 409 while it is
    paused; 412 when it failed (rolled back, superseded, a failing check) or there is none.
    """
    if rollout is None:
        return 412, {"model": model.name, "allowed": False, "status": None, "reason": "no rollout"}
    evidence = rollout.evidence or {}
    failing = []
    for name, check in (evidence.get("guardrails") or {}).items():
        if not check.get("ok", True):
            failing.append(name)
    if not (evidence.get("srm") or {}).get("ok", True):
        failing.append("sample_ratio")
    verdict = (evidence.get("verdict") or {}).get("action")
    if verdict == "rollback" and not failing:
        failing.append("primary_metric")
    if rollout.status == "promoted":
        code, reason = 200, "promoted"
    elif rollout.status in ("rolled_back", "superseded"):
        code, reason = 412, rollout.status
    elif rollout.status == "paused":
        code, reason = 409, "paused"
    elif failing:
        code, reason = 412, "failing: " + ", ".join(failing)
    else:
        code, reason = 200, "no check is failing"
    body = {
        "model": model.name,
        "allowed": code == 200,
        "status": rollout.status,
        "step": rollout.step,
        "champion": rollout.champion_version,
        "challenger": rollout.challenger_version,
        "reason": reason,
        "failing": failing,
        "evidence": evidence,
    }
    return code, body


def section(session: Session, model: Model, defaults: RolloutSettings | None = None) -> Any:
    """The ``rollout`` section of ``GET /v1/models/{name}``: the newest rollout, if any."""
    rollout = session.scalar(
        select(Rollout).where(Rollout.model_id == model.id).order_by(Rollout.id.desc()).limit(1)
    )
    if rollout is None:
        return None
    view = rollout_json(rollout, defaults)
    evidence = view.pop("evidence") or {}
    view.pop("config")
    view["difference"] = evidence.get("difference")
    view["verdict"] = evidence.get("verdict")
    return view
