"""Evaluating policies: which condition fires, with cooldown and debounce.

One incident fires one trigger. A degradation or a drift is an *incident* that opens when the
condition first holds and closes when it stops holding; it fires once (after holding for
``debounce_seconds``), and not again while it stays open. After any trigger the model's automatic
rules stay quiet for the cooldown; an incident still open when the cooldown ends fires then,
unless a trigger already covered it. When several conditions hold at once, one trigger fires
with the highest-priority reason and the others' evidence, and covers every open incident.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.errors import DriftloopError
from driftloop.feedback.triggers import conditions
from driftloop.feedback.triggers.conditions import EstimateReader, Finding
from driftloop.feedback.triggers.fire import fire
from driftloop.feedback.triggers.policy import RetrainingPolicy, cooldown_seconds, load_policy
from driftloop.jsonable import jsonable
from driftloop.settings import Settings
from driftloop.store import Model, OutboxMessage, RetrainConditionState, RetrainTrigger

log = logging.getLogger(__name__)

PRIORITY = ("degradation", "estimated_degradation", "drift", "new_labels", "schedule")
INCIDENTS = ("degradation", "estimated_degradation", "drift")


class CooldownError(DriftloopError, RuntimeError):
    """A manual trigger was refused because the model's previous trigger is too recent."""

    def __init__(self, model: str, last: datetime, until: datetime) -> None:
        super().__init__(
            f"model {model!r} fired a retrain trigger at {last.isoformat()}; cooldown until "
            f"{until.isoformat()} (pass force=true to fire anyway)"
        )
        self.until = until


@dataclass
class Fired:
    """A trigger that fired and the outbox message announcing it (None without a URL)."""

    trigger: RetrainTrigger
    message: OutboxMessage | None


def last_trigger(session: Session, model: Model) -> RetrainTrigger | None:
    """The model's most recent trigger."""
    return session.scalar(
        select(RetrainTrigger)
        .where(RetrainTrigger.model_id == model.id)
        .order_by(RetrainTrigger.fired_at.desc(), RetrainTrigger.id.desc())
        .limit(1)
    )


def cooldown_until(
    session: Session, model: Model, policy: RetrainingPolicy, settings: Settings
) -> tuple[RetrainTrigger | None, datetime | None]:
    """The last trigger and the end of its cooldown (None when there is none)."""
    last = last_trigger(session, model)
    if last is None:
        return None, None
    return last, last.fired_at + timedelta(seconds=cooldown_seconds(policy, settings))


def manual(
    session: Session,
    model: Model,
    settings: Settings,
    now: datetime,
    *,
    note: str | None = None,
    force: bool = False,
) -> Fired:
    """Fire on demand; refused with :class:`CooldownError` in cooldown unless ``force``."""
    policy, _ = load_policy(session, model)
    last, until = cooldown_until(session, model, policy, settings)
    if last is not None and until is not None and now < until and not force:
        raise CooldownError(model.name, last.fired_at, until)
    evidence: dict[str, Any] = {"note": note, "forced": force and until is not None and now < until}
    evidence.update(_context(session, model, policy, now))
    trigger, message = fire(
        session, model, Finding("manual", evidence), policy=policy, settings=settings, now=now
    )
    return Fired(trigger, message)


def evaluate_model(
    session: Session,
    model: Model,
    settings: Settings,
    now: datetime,
    *,
    estimates: EstimateReader | None = None,
) -> Fired | None:
    """Run the model's automatic rules once; fire at most one trigger (no commit).
    ``estimates`` reads the model's estimated performance (the estimated-degradation rule)."""
    policy, updated_at = load_policy(session, model)
    if not policy.enabled:
        return None
    last, until = cooldown_until(session, model, policy, settings)
    quiet = until is not None and now < until
    states = {
        s.condition: s
        for s in session.scalars(
            select(RetrainConditionState).where(RetrainConditionState.model_id == model.id)
        )
    }

    def state(name: str) -> RetrainConditionState:
        if name not in states:
            states[name] = RetrainConditionState(model_id=model.id, condition=name, updated_at=now)
            session.add(states[name])
        states[name].updated_at = now
        return states[name]

    found: dict[str, Finding] = {}
    if policy.schedule is not None:
        sched = state("schedule")
        start = sched.next_due_at
        if start is None:
            sched.next_due_at = _next_slot(policy.schedule, updated_at or now)
        if sched.next_due_at is not None and now >= sched.next_due_at:
            found["schedule"] = Finding(
                "schedule", {"schedule": policy.schedule, "slot": sched.next_due_at.isoformat()}
            )
            sched.next_due_at = _next_slot(policy.schedule, now)
    if policy.new_labels is not None:
        since = None if last is None else last.fired_at
        ok, finding = _safely(session, conditions.new_labels, model, policy.new_labels, since)
        if finding is not None:
            found["new_labels"] = finding
    incident_findings: dict[str, Finding | None] = {}
    if policy.degradation is not None:
        ok, finding = _safely(session, conditions.degradation, model, policy.degradation, now)
        if ok:  # unknown (the source failed): the incident stays as it was
            incident_findings["degradation"] = finding
    if policy.estimated_degradation is not None:
        rule = policy.estimated_degradation
        check = conditions.estimated_degradation
        ok, finding = _safely(session, check, model, rule, estimates)
        if ok:
            incident_findings["estimated_degradation"] = finding
    if policy.drift is not None:
        ok, finding = _safely(session, conditions.drift, model, policy.drift, now)
        if ok:
            incident_findings["drift"] = finding
    for name, finding in incident_findings.items():
        incident = state(name)
        if finding is None:
            incident.active_since = None
            incident.fired_trigger_id = None
            continue
        if incident.active_since is None:
            incident.active_since = now
        held = (now - incident.active_since).total_seconds()
        if incident.fired_trigger_id is None and held >= policy.debounce_seconds:
            finding.evidence["incident_since"] = incident.active_since.isoformat()
            found[name] = finding
    session.flush()
    if not found:
        return None
    if quiet:
        log.info(
            "model %s: %s hold but cooldown lasts until %s",
            model.name,
            ", ".join(sorted(found)),
            until.isoformat() if until else "?",
        )
        return None
    reason = next(r for r in PRIORITY if r in found)
    primary = found[reason]
    others = {r: f.evidence for r, f in found.items() if r != reason}
    if others:
        primary.evidence["also"] = others
    primary.evidence.update(_context(session, model, policy, now))
    trigger, message = fire(session, model, primary, policy=policy, settings=settings, now=now)
    for name in INCIDENTS:
        if name in states and states[name].active_since is not None:
            states[name].fired_trigger_id = trigger.id
    session.flush()
    return Fired(trigger, message)


def _next_slot(schedule: str, after: datetime) -> datetime:
    nxt: datetime = croniter(schedule, after).get_next(datetime)
    return nxt


def _safely(session: Session, check: Any, *args: Any) -> tuple[bool, Finding | None]:
    """``(True, finding)``, or ``(False, None)`` when the check failed (condition unknown)."""
    try:
        with conditions.isolated(session):
            result: Finding | None = check(session, *args)
    except Exception:  # another component's source failing must not stop the other rules
        log.exception("retrain condition %s failed", getattr(check, "__name__", check))
        return False, None
    return True, result


SUMMARY_KEYS = ("n", "predictions", "label_coverage", "metrics")


def _summary(result: Any) -> Any:
    """``performance(...)`` without its per-class, per-segment and latency detail."""
    if not isinstance(result, dict) or not isinstance(result.get("versions"), dict):
        return result
    versions = {
        version: {
            variant: {k: group.get(k) for k in SUMMARY_KEYS} if isinstance(group, dict) else group
            for variant, group in variants.items()
        }
        for version, variants in result["versions"].items()
        if isinstance(variants, dict)
    }
    return {**{k: v for k, v in result.items() if k != "versions"}, "versions": versions}


def _context(
    session: Session, model: Model, policy: RetrainingPolicy, now: datetime
) -> dict[str, Any]:
    """Metrics with their intervals at firing time, whatever the reason (best effort)."""
    perf = conditions.source("driftloop.feedback", "performance")
    if perf is None:
        return {}
    window = policy.degradation.window_seconds if policy.degradation else None
    since = None if window is None else now - timedelta(seconds=window)
    try:
        with conditions.isolated(session):
            result = perf(session, model, since=since, until=now)
        return {"performance": jsonable(_summary(result))}
    except Exception:  # evidence is best effort; the trigger itself must not fail
        log.exception("performance evidence for %s failed", model.name)
        return {}
