"""JSON views of rollouts: the state, the decision history, the gate verdict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import RolloutStatus
from driftloop.monitor.rollout.decide import plan
from driftloop.monitor.rollout.service import effective_config
from driftloop.settings import RolloutSettings
from driftloop.store import Model, Rollout, RolloutDecision

__all__ = [
    "GATE_PHASES",
    "VERDICT_CODES",
    "decisions_json",
    "gate_verdict",
    "rollout_json",
    "section",
    "verdict_of",
]


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


GATE_PHASES: dict[str, str] = {
    "step": "step",
    "promotion": "promotion",
    "rollback": "rollback",
    # Flagger's webhook types, for a URL that names the hook it serves.
    "pre-rollout": "step",
    "rollout": "step",
    "confirm-rollout": "step",
    "confirm-traffic-increase": "step",
    "confirm-promotion": "promotion",
}
"""Values of the gate's ``phase`` parameter and the question each asks."""

VERDICT_CODES = {"pass": 200, "inconclusive": 409, "fail": 412}
"""Status code of each verdict (``phase=step`` and ``phase=promotion``)."""


def _failing(evidence: dict[str, Any]) -> list[str]:
    failing = [
        name
        for name, check in (evidence.get("guardrails") or {}).items()
        if not check.get("ok", True)
    ]
    if not (evidence.get("srm") or {}).get("ok", True):
        failing.append("sample_ratio")
    verdict = evidence.get("verdict") or {}
    if (verdict.get("action") == "rollback" or (evidence.get("proven") or {}).get("inferior")) and (
        not failing
    ):
        named = {"deadline": "deadline", "estimated_inferior": "estimated_primary_metric"}
        failing.append(named.get(verdict.get("reason") or "", "primary_metric"))
    return failing


def _proven(evidence: dict[str, Any]) -> bool:
    """Non-inferiority shown by the latest evaluation."""
    proven = evidence.get("proven")
    if proven is not None:
        return bool(proven.get("non_inferior"))
    difference = evidence.get("difference") or {}
    lower, margin = difference.get("running_lower"), evidence.get("margin")
    return lower is not None and margin is not None and lower > -margin


def verdict_of(rollout: Rollout | None, phase: str) -> tuple[str, str, list[str]]:
    """``pass | fail | inconclusive``, the reason, and the failing checks, for ``phase``."""
    if rollout is None:
        return "fail", "no rollout", []
    evidence = rollout.evidence or {}
    failing = _failing(evidence)
    if rollout.status == RolloutStatus.promoted:
        return "pass", "promoted", []
    if rollout.status in (RolloutStatus.rolled_back, RolloutStatus.superseded):
        why = (evidence.get("verdict") or {}).get("reason")
        return "fail", rollout.status + (f" ({why})" if why == "deadline" else ""), failing
    if failing:
        return "fail", "failing: " + ", ".join(failing), failing
    if rollout.status == RolloutStatus.paused:
        return "inconclusive", "paused", []
    if GATE_PHASES[phase] == "step":
        return "pass", "no check is failing", []
    if _proven(evidence):
        return "pass", "non-inferiority shown and no check is failing", []
    return "inconclusive", "not proven yet: the interval still reaches below -margin", []


def gate_verdict(
    rollout: Rollout | None, model: Model, phase: str = "step", provider: str | None = None
) -> tuple[int, dict[str, Any]]:
    """The status code and body of ``GET /v1/models/{name}/gate``.

    ``phase=step`` (the default): may the rollout go on? 200 while it is active with nothing
    failing, or promoted; 409 while paused; 412 when it failed (rolled back, superseded, a failing
    check) or there is none. ``phase=promotion``: is the challenger proven? 200 only once
    promoted or non-inferiority is shown with nothing failing, 409 while undecided, 412 failed.
    ``phase=rollback`` (Flagger's rollback hook, where a 2xx *triggers* the rollback): 200 only
    when the verdict is ``fail``, 409 otherwise. ``provider=argo`` answers 200 whatever the
    verdict (Argo Rollouts counts a non-2xx answer as a measurement error); the body's ``verdict``
    carries it.
    """
    verdict, reason, failing = verdict_of(rollout, phase)
    question = GATE_PHASES[phase]
    rollback_hook = 200 if verdict == "fail" else 409
    code = rollback_hook if question == "rollback" else VERDICT_CODES[verdict]
    if provider == "argo":
        code = 200
    body: dict[str, Any] = {
        "model": model.name,
        "phase": phase,
        "verdict": verdict,
        "allowed": verdict == "pass",
        "status": None if rollout is None else rollout.status,
        "reason": reason,
        "failing": failing,
    }
    if rollout is not None:
        body.update(
            step=rollout.step,
            champion=rollout.champion_version,
            challenger=rollout.challenger_version,
            evidence=rollout.evidence or {},
        )
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
    view["estimated_difference"] = evidence.get("estimated_difference")
    view["verdict"] = evidence.get("verdict")
    view["deadline"] = evidence.get("deadline")
    return view
