"""The drift component of the monitor: ingest profiles, periodic evaluation, metrics, reports.

:func:`install` wires it into the app: the ingest hook that counts records into per-minute
profiles (and flags out-of-distribution rows), the ``drift`` evaluation job, the Prometheus
collector, the ``drift`` and ``quality`` sections of the model page, and the report route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from fastapi import FastAPI

    from driftloop.monitor.evaluation.collector import METRICS, DriftCollector, latest_results
    from driftloop.monitor.evaluation.job import Evaluator, evaluate_window, window_bounds
    from driftloop.monitor.evaluation.latest import latest_drift
    from driftloop.monitor.evaluation.report import evidently_html
    from driftloop.monitor.evaluation.views import drift_section, quality_section
    from driftloop.web.state import MonitorState

__all__ = [
    "METRICS",
    "DriftCollector",
    "Evaluator",
    "drift_section",
    "evaluate_window",
    "evidently_html",
    "install",
    "latest_drift",
    "latest_results",
    "quality_section",
    "window_bounds",
]


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.evaluation.collector": ("METRICS", "DriftCollector", "latest_results"),
        "driftloop.monitor.evaluation.job": ("Evaluator", "evaluate_window", "window_bounds"),
        "driftloop.monitor.evaluation.latest": ("latest_drift",),
        "driftloop.monitor.evaluation.report": ("evidently_html",),
        "driftloop.monitor.evaluation.views": ("drift_section", "quality_section"),
    },
)


def install(app: FastAPI, state: MonitorState) -> None:
    """Add the drift component to the monitor app (one line in ``COMPONENTS``)."""
    from driftloop.monitor.evaluation.collector import DriftCollector
    from driftloop.monitor.evaluation.job import Evaluator
    from driftloop.monitor.evaluation.routes import make_router
    from driftloop.monitor.evaluation.views import drift_section, quality_section
    from driftloop.monitor.profiles import BaselineCache, ProfileHook

    baselines = BaselineCache(ood_margin=state.settings.drift.ood_margin)
    state.ingest_hooks.append(ProfileHook(baselines, state.clock))
    state.jobs.add("drift", state.settings.jobs.interval_seconds, Evaluator(baselines))
    state.model_sections["drift"] = drift_section
    state.model_sections["quality"] = quality_section
    state.registry.register(
        DriftCollector(
            state.sessions,
            clock=state.clock,
            stale_after_seconds=60.0 * state.settings.drift.series_ttl_minutes,
        )
    )
    app.include_router(make_router(baselines))
