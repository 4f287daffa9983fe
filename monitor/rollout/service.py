"""The rollout state machine over the store: start, evaluate, advance, promote, roll back.

Every change of state writes one :class:`~driftloop.store.RolloutDecision` with the evidence it
was made on, and moves the routing policy the sidecars poll:

- shadow step: mode ``shadow`` (the challenger answers a copy of every request), weight 0;
- canary/A-B step ``w``: mode ``canary`` (or ``ab`` with the sticky key), weight ``w``;
- promoted: the challenger becomes the champion (the old one is retired), mode ``single``;
- rolled back: the challenger is retired, mode ``single`` on the champion.

Functions take a ``Session`` and leave committing to the caller (the job or the endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.contract import Role, RolloutStatus
from driftloop.errors import ValidationError
from driftloop.monitor.rollout.decide import Action, Reason, Step, check_config, decide, plan
from driftloop.monitor.rollout.evidence import LabeledRows, assess
from driftloop.monitor.rollout.routing import write_policy
from driftloop.monitor.rollout.state import Progress
from driftloop.settings import RolloutSettings
from driftloop.store import Model, ModelVersion, Rollout, RolloutDecision
from driftloop.store.registry import set_version

__all__ = [
    "ACTIVE",
    "RolloutConflictError",
    "current_rollout",
    "effective_config",
    "evaluate",
    "manual",
    "start_rollout",
]

Estimates = Callable[[Session, Model], Any]
"""``(session, model)`` -> the model's estimated performance (``performance.estimated``), or
None when the estimation is off."""

ACTIVE = (RolloutStatus.active, RolloutStatus.paused)
"""Statuses of a rollout that still owns the model's routing."""


class RolloutConflictError(ValidationError):
    """The action does not fit the rollout's state (resume when not paused, and so on)."""


def effective_config(rollout: Rollout, defaults: RolloutSettings | None = None) -> RolloutSettings:
    """The settings a rollout runs with: the monitor's defaults and the rollout's overrides."""
    base = defaults or RolloutSettings()
    return RolloutSettings.model_validate({**base.model_dump(), **(rollout.config or {})})


def current_rollout(session: Session, model: Model, *, lock: bool = False) -> Rollout | None:
    """The model's newest rollout (active or not)."""
    statement = (
        select(Rollout).where(Rollout.model_id == model.id).order_by(Rollout.id.desc()).limit(1)
    )
    if lock:
        statement = statement.with_for_update()
    return session.scalar(statement)


def _champion(session: Session, model: Model) -> str | None:
    return session.scalar(
        select(ModelVersion.version)
        .where(ModelVersion.model_id == model.id, ModelVersion.role == Role.champion.value)
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def _decide_row(
    session: Session,
    rollout: Rollout,
    decision: str,
    actor: str,
    reason: str,
    to_step: int,
    evidence: dict[str, Any] | None,
    now: datetime,
) -> None:
    session.add(
        RolloutDecision(
            rollout_id=rollout.id,
            model_id=rollout.model_id,
            decision=decision,
            actor=actor,
            reason=reason,
            from_step=rollout.step,
            to_step=to_step,
            evidence=evidence,
            decided_at=now,
        )
    )


def _route(
    session: Session, model: Model, rollout: Rollout, config: RolloutSettings, now: datetime
) -> None:
    if rollout.status == RolloutStatus.promoted:
        write_policy(
            session,
            model,
            mode="single",
            weight=0.0,
            champion=rollout.challenger_version,
            challenger=None,
            sticky_key=None,
            now=now,
        )
        return
    if rollout.status in (RolloutStatus.rolled_back, RolloutStatus.superseded):
        write_policy(
            session,
            model,
            mode="single",
            weight=0.0,
            champion=rollout.champion_version,
            challenger=None,
            sticky_key=None,
            now=now,
        )
        return
    steps = plan(config)
    step = steps[min(rollout.step, len(steps) - 1)]
    write_policy(
        session,
        model,
        mode=step.mode,
        weight=step.weight,
        champion=rollout.champion_version,
        challenger=rollout.challenger_version,
        sticky_key=config.sticky_key,
        now=now,
    )


def start_rollout(
    session: Session,
    model: Model,
    challenger_version: str,
    now: datetime,
    *,
    config: dict[str, Any] | None = None,
    actor: str = "auto",
    defaults: RolloutSettings | None = None,
) -> Rollout:
    """Make ``challenger_version`` the challenger and start the state machine at its first step.

    ``config`` overrides the monitor's rollout settings for this rollout. Starting the rollout
    already running for the same challenger changes nothing; a rollout of another challenger is
    superseded (its decision history says so).
    """
    overrides = dict(config or {})
    effective = RolloutSettings.model_validate(
        {**(defaults or RolloutSettings()).model_dump(), **overrides}
    )
    check_config(effective)
    champion = _champion(session, model)
    if champion is None:
        raise ValidationError(f"model {model.name!r} has no champion version to compare against")
    if champion == challenger_version:
        raise ValidationError(
            f"version {challenger_version!r} is already the champion of {model.name!r}"
        )
    running = current_rollout(session, model, lock=True)
    if running is not None and running.status in ACTIVE:
        if running.challenger_version == challenger_version:
            return running
        _decide_row(
            session,
            running,
            "superseded",
            actor,
            f"challenger {challenger_version!r} replaces it",
            running.step,
            running.evidence,
            now,
        )
        running.status, running.ended_at, running.updated_at = RolloutStatus.superseded, now, now
        set_version(session, model, running.challenger_version, Role.retired, None, now)
    set_version(session, model, challenger_version, Role.challenger, None, now)
    rollout = Rollout(
        model_id=model.id,
        champion_version=champion,
        challenger_version=challenger_version,
        status=RolloutStatus.active,
        step=0,
        step_started_at=now,
        phase_started_at=now,
        started_at=now,
        config=overrides,
        progress={},
        updated_at=now,
    )
    session.add(rollout)
    session.flush()
    _decide_row(
        session,
        rollout,
        "start",
        actor,
        "rollout started",
        0,
        {"champion": champion, "challenger": challenger_version, "config": effective.model_dump()},
        now,
    )
    _route(session, model, rollout, effective, now)
    return rollout


def _apply(
    session: Session,
    model: Model,
    rollout: Rollout,
    config: RolloutSettings,
    action: Action,
    reason: str,
    actor: str,
    evidence: dict[str, Any] | None,
    now: datetime,
) -> None:
    steps = plan(config)
    if action is Action.advance:
        _decide_row(session, rollout, "advance", actor, reason, rollout.step + 1, evidence, now)
        leaving: Step = steps[rollout.step]
        if leaving.paired:
            # The canary phase compares unpaired rows from now on; the paired rows stay one
            # stratum of the rollout's comparison.
            rollout.phase_started_at = now
        rollout.progress = Progress.from_json(rollout.progress).step_done().as_json()
        rollout.step += 1
        rollout.step_started_at = now
    elif action is Action.promote:
        _decide_row(session, rollout, "promote", actor, reason, rollout.step, evidence, now)
        set_version(session, model, rollout.challenger_version, Role.champion, None, now)
        rollout.status, rollout.ended_at = RolloutStatus.promoted, now
    elif action is Action.rollback:
        _decide_row(session, rollout, "rollback", actor, reason, rollout.step, evidence, now)
        set_version(session, model, rollout.challenger_version, Role.retired, None, now)
        rollout.status, rollout.ended_at = RolloutStatus.rolled_back, now
    rollout.updated_at = now
    _route(session, model, rollout, config, now)


REASONS = {
    Reason.waiting: "waiting for samples, time or evidence",
    Reason.step_complete: "step complete: minimum samples and duration reached, guardrails hold",
    Reason.non_inferior: "non-inferiority shown: the interval lies above -margin",
    Reason.inferior: "inferior: the interval lies below -margin",
    Reason.error_rate: "guardrail: the challenger's 5xx share is higher than tolerated",
    Reason.latency: "guardrail: the challenger's p99 latency is higher than tolerated",
    Reason.sample_ratio_mismatch: "sample ratio mismatch: the split does not follow the policy",
    Reason.deadline: "deadline: max_step_seconds or max_rollout_seconds passed undecided",
    Reason.estimated_inferior: "estimated inferior (no labels yet): the estimated difference "
    "lies below -estimated_rollback_margin",
}


def evaluate(
    session: Session,
    model: Model,
    rollout: Rollout,
    now: datetime,
    labeled_rows: LabeledRows,
    defaults: RolloutSettings | None = None,
    estimates: Estimates | None = None,
) -> Action:
    """Assess the rollout and act on it (a paused rollout is assessed but not moved);
    ``estimates`` adds the estimated difference to the evidence."""
    config = effective_config(rollout, defaults)
    steps = plan(config)
    step = steps[min(rollout.step, len(steps) - 1)]
    estimated = None if estimates is None else estimates(session, model)
    result = assess(session, model, rollout, step, config, now, labeled_rows, estimated)
    actions, reasons = decide(config, rollout.step, len(steps) - 1, result.evidence)
    action, reason = Action(int(actions)), Reason(int(reasons))
    result.record["verdict"] = {"action": action.name, "reason": reason.name}
    rollout.progress = result.progress.as_json()
    rollout.evidence = result.record
    rollout.evaluated_at = now
    if rollout.status != RolloutStatus.active or action is Action.hold:
        return Action.hold
    _apply(
        session,
        model,
        rollout,
        config,
        action,
        f"{reason.name}: {REASONS[reason]}",
        "auto",
        result.record,
        now,
    )
    return action


def manual(
    session: Session,
    model: Model,
    action: str,
    now: datetime,
    *,
    reason: str | None = None,
    defaults: RolloutSettings | None = None,
) -> Rollout:
    """An operator's pause, resume, promote or rollback; repeating a done action is a no-op."""
    rollout = current_rollout(session, model, lock=True)
    if rollout is None:
        raise RolloutConflictError(f"model {model.name!r} has no rollout to {action}")
    done = {
        "pause": RolloutStatus.paused,
        "resume": RolloutStatus.active,
        "promote": RolloutStatus.promoted,
        "rollback": RolloutStatus.rolled_back,
    }
    if rollout.status == done[action]:
        return rollout
    if rollout.status not in ACTIVE:
        raise RolloutConflictError(
            f"cannot {action} the rollout of {model.name!r}: it is {rollout.status} already"
        )
    why = reason or f"manual {action}"
    config = effective_config(rollout, defaults)
    if action in ("pause", "resume"):
        _decide_row(session, rollout, action, "admin", why, rollout.step, rollout.evidence, now)
        rollout.status, rollout.updated_at = done[action], now
        return rollout
    _apply(session, model, rollout, config, Action[action], why, "admin", rollout.evidence, now)
    return rollout
