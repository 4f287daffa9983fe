"""The retraining component of the monitor: routes, metrics and the leader's two jobs.

``retrain.evaluate`` runs every model's policy; ``webhooks.deliver`` sends due outbox messages
(every second by default, and right after a trigger fires). The estimated-degradation rule reads
the monitor's estimates through ``estimates``, handed in by the composition root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.feedback.triggers.conditions import EstimateReader
from driftloop.feedback.triggers.evaluate import evaluate_model
from driftloop.feedback.triggers.metrics import count_trigger, trigger_counter
from driftloop.feedback.triggers.policy import load_policy, webhook_secrets
from driftloop.feedback.webhooks.delivery import DELIVER_JOB, Deliverer, kick
from driftloop.feedback.webhooks.metrics import WebhookMetrics
from driftloop.feedback.webhooks.signing import configured_secrets
from driftloop.store import Model, OutboxMessage, RetrainPolicyRow, RetrainTrigger

if TYPE_CHECKING:
    from fastapi import FastAPI

    from driftloop.web.state import MonitorState

log = logging.getLogger(__name__)

EVALUATE_JOB = "retrain.evaluate"


StateEstimates = Callable[["MonitorState", Session, Model], Any]
"""``(state, session, model)`` -> the model's estimated performance (the monitor's
``estimated_performance``)."""


def install(app: FastAPI, state: MonitorState, *, estimates: StateEstimates | None = None) -> None:
    """Add the retraining and webhook routes, metrics, model section and jobs to the monitor;
    ``estimates`` feeds the estimated-degradation rule (without it, the rule never holds)."""
    # The routers import the monitor's auth and state; imported here so that importing this
    # package never imports the monitor app (which imports this package).
    from driftloop.feedback.triggers import api, callback
    from driftloop.feedback.webhooks import api as webhooks_api

    app.include_router(api.router)
    app.include_router(callback.router)
    app.include_router(webhooks_api.router)
    metrics = WebhookMetrics(state.registry, state.sessions)
    trigger_counter(state.registry)
    deliverer = Deliverer(
        state.settings,
        state.sessions,
        lambda: state.http,
        state.clock,
        metrics=metrics,
        secrets_for=lambda session, message: secrets_for(state, session, message),
    )
    app.state.webhook_deliverer = deliverer  # integrations add senders (MLflow write-back)
    state.model_sections["retraining"] = api.retraining_section(state)
    state.model_history["triggers"] = trigger_history
    reader = None if estimates is None else partial(estimates, state)
    state.jobs.add(
        EVALUATE_JOB,
        state.settings.retrain.evaluate_interval_seconds,
        lambda s: evaluate_job(s, estimates=reader),
    )
    state.jobs.add(
        DELIVER_JOB, state.settings.webhooks.deliver_interval_seconds, lambda _s: _ran(deliverer)
    )


def trigger_history(session: Session, model: Model) -> list[dict[str, Any]]:
    """The model's 20 newest retraining triggers, for the status page."""
    from driftloop.feedback.triggers.api import describe_trigger

    triggers = session.scalars(
        select(RetrainTrigger)
        .where(RetrainTrigger.model_id == model.id)
        .order_by(RetrainTrigger.id.desc())
        .limit(20)
    )
    return [describe_trigger(session, t) for t in triggers]


def secrets_for(state: MonitorState, session: Session, message: OutboxMessage) -> Sequence[str]:
    """The secrets of the message's model policy, or the settings' (read at each attempt, so a
    rotation applies to messages already queued)."""
    model = session.get(Model, message.model_id)
    if model is None:
        return configured_secrets(state.settings)
    policy, _ = load_policy(session, model)
    return webhook_secrets(policy, state.settings)


def _ran(deliverer: Deliverer) -> None:
    deliverer.run()


def evaluate_job(state: MonitorState, *, estimates: EstimateReader | None = None) -> None:
    """The periodic job: :func:`evaluate_all`."""
    evaluate_all(state, estimates=estimates)


def evaluate_all(state: MonitorState, *, estimates: EstimateReader | None = None) -> int:
    """Evaluate every model that has a stored policy, each in its own transaction."""
    with state.sessions() as session:
        model_ids = list(session.scalars(select(RetrainPolicyRow.model_id)))
    fired = 0
    for model_id in model_ids:
        try:
            with state.sessions.begin() as session:
                model = session.get(Model, model_id)
                if model is None:
                    continue
                result = evaluate_model(
                    session, model, state.settings, state.clock.now(), estimates=estimates
                )
                name = model.name
        except Exception:  # one model's failure must not stop the others
            log.exception("retrain policy of model id %d failed", model_id)
            continue
        if result is not None:
            fired += 1
            count_trigger(state.registry, name, result.trigger.reason)
    if fired:
        kick(state)
    return fired
