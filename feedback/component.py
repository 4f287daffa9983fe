"""``install(app, state)``: the feedback component of the monitor (one line in ``COMPONENTS``).

It adds the label and snapshot endpoints, the feedback counters and the performance collector,
the leader's periodic performance job (and the snapshot prune, when snapshots have a
retention), and the ``performance`` and ``labels`` sections of
``GET /v1/models/{name}``. It adds no ingest hook: labels are joined at query time (see
``driftloop.feedback.join``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.feedback import api
from driftloop.feedback.collector import PerformanceCollector
from driftloop.feedback.join import label_count
from driftloop.feedback.metrics import FeedbackMetrics
from driftloop.feedback.performance import Options, windowed
from driftloop.feedback.results import LatestResults, compute_all, stored_result
from driftloop.feedback.snapshot_retention import prune_snapshots
from driftloop.store import LabelRow, Model
from driftloop.web.state import MonitorState

JOB_NAME = "feedback.performance"
SNAPSHOT_JOB = "feedback.snapshot_prune"


def install(app: FastAPI, state: MonitorState) -> None:
    """Plug the feedback component into the monitor app."""
    latest = LatestResults(state.sessions, ttl=min(15.0, state.settings.jobs.interval_seconds))
    metrics = app.state.feedback_metrics = FeedbackMetrics(state.registry)
    state.registry.register(PerformanceCollector(latest))
    app.include_router(api.router)
    state.jobs.add(JOB_NAME, state.settings.jobs.interval_seconds, lambda s: compute_all(s, latest))
    retention = state.settings.retention
    if retention.enabled and retention.snapshot_days is not None:
        days = timedelta(days=retention.snapshot_days)

        def snapshot_prune(job_state: MonitorState) -> None:
            report = prune_snapshots(job_state.engine, job_state.clock.now() - days)
            metrics.snapshots_pruned.labels("removed").inc(len(report.removed))
            metrics.snapshots_pruned.labels("failed").inc(len(report.failed))

        state.jobs.add(SNAPSHOT_JOB, retention.interval_seconds, snapshot_prune)

    def performance_section(session: Session, model: Model) -> Any:
        stored = stored_result(session, model)
        if stored is not None:
            return stored
        settings = state.settings.feedback
        return windowed(
            session,
            model,
            state.clock.now(),
            settings.windows_seconds,
            Options.from_settings(settings),
        )

    state.model_sections["performance"] = performance_section
    state.model_sections["labels"] = labels_section


def labels_section(session: Session, model: Model) -> dict[str, Any]:
    """Labels of a model: stored under it, joined to its records, corrections, the newest."""
    stored, corrections, newest = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(LabelRow.corrections), 0),
            func.max(LabelRow.updated_at),
        ).where(LabelRow.model_id == model.id)
    ).one()
    return {
        "stored": int(stored),
        "joined": label_count(session, model),
        "corrections": int(corrections),
        "last_label_at": newest.isoformat() if newest is not None else None,
    }
