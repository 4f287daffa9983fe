"""Plugs rollouts into the monitor: routes, collector, model section and the evaluation job.

The job reads the estimated performance (``driftloop.monitor.estimation``) too: its estimated
challenger-vs-champion difference goes into the evidence while labels are pending."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.monitor.estimation.component import estimated_performance
from driftloop.monitor.rollout import api
from driftloop.monitor.rollout.collector import RolloutCollector
from driftloop.monitor.rollout.evidence import LabeledRows
from driftloop.monitor.rollout.service import ACTIVE, current_rollout, evaluate
from driftloop.monitor.rollout.views import decisions_json, section
from driftloop.store import Model, Rollout

if TYPE_CHECKING:
    from driftloop.web.state import MonitorState

__all__ = ["JOB_NAME", "decision_history", "evaluate_rollouts", "install"]

log = logging.getLogger(__name__)

JOB_NAME = "rollout"


def evaluate_rollouts(state: MonitorState, rows: LabeledRows) -> None:
    """Evaluate every active or paused rollout once, each in its own transaction; ``rows`` gives
    the labeled rows (feedback's ``labeled_rows``, handed in by the composition root)."""
    with state.sessions() as session:
        ids = list(session.scalars(select(Rollout.id).where(Rollout.status.in_(ACTIVE))))
    for rollout_id in ids:
        try:
            with state.sessions.begin() as session:
                _evaluate_one(session, state, rollout_id, rows)
        except Exception:  # one broken rollout must not stop the others
            log.exception("rollout %s could not be evaluated", rollout_id)


def _evaluate_one(
    session: Session, state: MonitorState, rollout_id: int, rows: LabeledRows
) -> None:
    rollout = session.scalar(select(Rollout).where(Rollout.id == rollout_id).with_for_update())
    if rollout is None or rollout.status not in ACTIVE:
        return  # finished by an operator since the list was read
    model = session.get(Model, rollout.model_id)
    if model is None:
        return
    action = evaluate(
        session,
        model,
        rollout,
        state.clock.now(),
        rows,
        state.settings.rollout,
        estimates=lambda s, m: estimated_performance(state, s, m),
    )
    if action.name != "hold":
        log.info("rollout of %s: %s (%s)", model.name, action.name, rollout.status)


def install(app: FastAPI, state: MonitorState, *, rows: LabeledRows) -> None:
    """Add the rollout endpoints, metrics, model section, decision history and periodic
    evaluation; ``rows`` gives the labeled rows the comparisons are made on."""
    defaults = state.settings.rollout
    app.include_router(api.router)
    state.registry.register(RolloutCollector(state.sessions, defaults))
    state.model_sections["rollout"] = lambda session, model: section(session, model, defaults)
    state.model_history["decisions"] = decision_history
    state.jobs.add(
        JOB_NAME, defaults.evaluate_interval_seconds, lambda s: evaluate_rollouts(s, rows)
    )


def decision_history(session: Session, model: Model) -> list[dict[str, Any]]:
    """The decisions of the model's current (or latest) rollout, for the status page."""
    rollout = current_rollout(session, model)
    return [] if rollout is None else decisions_json(session, rollout)
