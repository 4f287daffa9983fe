"""Prometheus collector of rollouts, read from the store at scrape time.

Reading the store (a few rows per model) rather than the leader's memory lets every monitor
replica export the same values; the decision counter is a count of stored decisions, which only
grows because decisions are never deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from driftloop.monitor.rollout.views import rollout_json
from driftloop.settings import RolloutSettings
from driftloop.store import Model, Rollout, RolloutDecision

__all__ = ["STATES", "RolloutCollector"]

log = logging.getLogger(__name__)

STATES = ("shadow", "canary", "ab", "paused", "promoted", "rolled_back", "superseded")
"""Values of the ``state`` label of ``driftloop_rollout_state``."""


def _state_of(view: dict[str, Any]) -> str:
    return view["mode"] if view["status"] == "active" else view["status"]


class RolloutCollector(Collector):
    """Yields the newest rollout of every model: state, step, weight, interval, checks."""

    def __init__(self, sessions: sessionmaker[Session], defaults: RolloutSettings) -> None:
        self.sessions = sessions
        self.defaults = defaults

    def describe(self) -> list[Metric]:
        """No static description: the families depend on the store."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read the store and yield the metric families."""
        try:
            with self.sessions() as session:
                newest = select(func.max(Rollout.id)).group_by(Rollout.model_id).scalar_subquery()
                rows = session.execute(
                    select(Model.name, Rollout)
                    .join(Rollout, Rollout.model_id == Model.id)
                    .where(Rollout.id.in_(newest))
                ).all()
                views = [(name, rollout_json(r, self.defaults)) for name, r in rows]
                counts = session.execute(
                    select(Model.name, RolloutDecision.decision, func.count())
                    .join(RolloutDecision, RolloutDecision.model_id == Model.id)
                    .group_by(Model.name, RolloutDecision.decision)
                ).all()
        except SQLAlchemyError:
            log.warning("rollout metrics unavailable: the database did not answer", exc_info=True)
            return
        yield from self._families(views, counts)

    def _families(
        self, views: list[tuple[str, dict[str, Any]]], counts: Sequence[Any]
    ) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "driftloop_rollout_state",
            "1 for the state the newest rollout is in.",
            labels=["model", "state"],
        )
        step = GaugeMetricFamily(
            "driftloop_rollout_step", "Index of the rollout's step in its plan.", labels=["model"]
        )
        weight = GaugeMetricFamily(
            "driftloop_rollout_weight_ratio",
            "Challenger share of answers the rollout's step sets.",
            labels=["model"],
        )
        diff = GaugeMetricFamily(
            "driftloop_rollout_difference",
            "Primary metric difference challenger minus champion (positive: challenger better); "
            "bound estimate, lower or upper of the confidence sequence.",
            labels=["model", "bound"],
        )
        samples = GaugeMetricFamily(
            "driftloop_rollout_labeled_samples",
            "Labeled rows behind the comparison, per arm.",
            labels=["model", "variant"],
        )
        errors = GaugeMetricFamily(
            "driftloop_rollout_error_ratio",
            "Share of 5xx answers in the phase, per arm.",
            labels=["model", "variant"],
        )
        latency = GaugeMetricFamily(
            "driftloop_rollout_latency_p99_seconds",
            "p99 latency in the phase, per arm.",
            labels=["model", "variant"],
        )
        srm = GaugeMetricFamily(
            "driftloop_rollout_srm_p_value",
            "Anytime-valid p-value of the sample-ratio check.",
            labels=["model"],
        )
        checks = GaugeMetricFamily(
            "driftloop_rollout_check_ok",
            "1 while a check passes (error_rate, latency, sample_ratio).",
            labels=["model", "check"],
        )
        for name, view in views:
            current = _state_of(view)
            for value in STATES:
                state.add_metric([name, value], 1.0 if value == current else 0.0)
            step.add_metric([name], float(view["step"]))
            weight.add_metric([name], _weight(view))
            ev = view.get("evidence") or {}
            d = ev.get("difference") or {}
            for bound, key in (
                ("estimate", "estimate"),
                ("lower", "running_lower"),
                ("upper", "running_upper"),
            ):
                if d.get(key) is not None:
                    diff.add_metric([name, bound], float(d[key]))
            for variant, n in (ev.get("samples") or {}).items():
                if variant in ("champion", "challenger"):
                    samples.add_metric([name, variant], float(n))
            guard = ev.get("guardrails") or {}
            err = guard.get("error_rate") or {}
            lat = guard.get("latency_p99") or {}
            for variant in ("champion", "challenger"):
                if err.get(variant) is not None:
                    errors.add_metric([name, variant], float(err[variant]))
                if lat.get(f"{variant}_ms") is not None:
                    latency.add_metric([name, variant], float(lat[f"{variant}_ms"]) / 1000.0)
            check = ev.get("srm") or {}
            if check.get("p_value") is not None:
                srm.add_metric([name], float(check["p_value"]))
            if ev:
                checks.add_metric([name, "error_rate"], float(bool(err.get("ok", True))))
                checks.add_metric([name, "latency"], float(bool(lat.get("ok", True))))
                checks.add_metric([name, "sample_ratio"], float(bool(check.get("ok", True))))
        decisions = CounterMetricFamily(
            "driftloop_rollout_decisions",
            "Rollout decisions (start, advance, promote, rollback, pause, resume, superseded).",
            labels=["model", "decision"],
        )
        for name, decision, count in counts:
            decisions.add_metric([name, decision], float(count))
        yield from (state, step, weight, diff, samples, errors, latency, srm, checks, decisions)


def _weight(view: dict[str, Any]) -> float:
    if view["status"] == "promoted":
        return 1.0
    if view["status"] in ("rolled_back", "superseded"):
        return 0.0
    return float(view["weight"])
