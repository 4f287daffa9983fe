"""Prometheus collector of the newest drift and quality results, one set per version and variant.

Values come from the stored results (written by the leader), so every replica exports the same
numbers. A short cache keeps a burst of scrapes to one query. Results older than
``stale_after_seconds`` (the job writes none for a window without records) are not exported:
retired and idle versions leave the exposition; every exported result carries its age.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from driftloop.clock import Clock, SystemClock
from driftloop.expiring import Expiring
from driftloop.store import DriftResult, Model

__all__ = ["METRICS", "DriftCollector", "latest_results"]

log = logging.getLogger(__name__)

KEY = ["model", "version", "variant"]
FEATURE = [*KEY, "feature", "method"]
QUALITY = [*KEY, "feature"]

METRICS: dict[str, tuple[str, list[str]]] = {
    "driftloop_feature_drift_statistic": ("Test statistic of the feature's drift method.", FEATURE),
    "driftloop_feature_drift_p_value": ("Unadjusted p-value (test methods only).", FEATURE),
    "driftloop_feature_drift_p_adjusted": ("Benjamini-Hochberg adjusted p-value.", FEATURE),
    "driftloop_feature_drift_effect_size": (
        "Effect size compared with the materiality threshold.",
        FEATURE,
    ),
    "driftloop_feature_drifted": ("1 when the feature drifted against the reference.", FEATURE),
    "driftloop_feature_drift_vs_previous_effect_size": (
        "Effect size of the window against the window before it.",
        FEATURE,
    ),
    "driftloop_feature_drifted_vs_previous": (
        "1 when the feature drifted against the previous window.",
        FEATURE,
    ),
    "driftloop_drifted_features_ratio": ("Share of tested features that drifted.", KEY),
    "driftloop_dataset_drifted": ("1 when the drifted share reached its threshold.", KEY),
    "driftloop_drifted_features_vs_previous_ratio": (
        "Share of features drifted against the previous window.",
        KEY,
    ),
    "driftloop_prediction_drift_effect_size": (
        "Effect size of prediction drift.",
        [*KEY, "method"],
    ),
    "driftloop_prediction_drift_p_value": ("p-value of prediction drift.", [*KEY, "method"]),
    "driftloop_prediction_drifted": ("1 when predictions drifted.", [*KEY, "method"]),
    "driftloop_feature_missing_ratio": ("Share of records missing the feature.", QUALITY),
    "driftloop_feature_type_errors_ratio": ("Share of records with a wrong type.", QUALITY),
    "driftloop_feature_unseen_ratio": ("Share of records with an unseen category.", QUALITY),
    "driftloop_feature_out_of_range_ratio": (
        "Share of records outside the reference range.",
        QUALITY,
    ),
    "driftloop_ood_records_ratio": ("Share of records the input guard flagged.", KEY),
    "driftloop_drift_window_records": ("Records in the evaluated window.", KEY),
    "driftloop_drift_evaluated_timestamp_seconds": ("When the window was evaluated.", KEY),
    "driftloop_drift_result_age_seconds": (
        "Age of the newest result at scrape time (rules can require freshness).",
        KEY,
    ),
}
"""Every metric this collector exports: name -> (help, labels)."""


def latest_results(session: Session) -> list[tuple[str, DriftResult]]:
    """The newest result of every model, version and variant, with the model's name."""
    newest = (
        select(func.max(DriftResult.id))
        .group_by(DriftResult.model_id, DriftResult.version, DriftResult.variant)
        .scalar_subquery()
    )
    query = (
        select(Model.name, DriftResult)
        .join(Model, Model.id == DriftResult.model_id)
        .where(DriftResult.id.in_(newest))
        .order_by(Model.name, DriftResult.version, DriftResult.variant)
    )
    return [(name, row) for name, row in session.execute(query)]


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


class DriftCollector(Collector):
    """Yields gauge families from the newest stored results."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        ttl_seconds: float = 5.0,
        *,
        clock: Clock | None = None,
        stale_after_seconds: float | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._stale_after = stale_after_seconds
        self._results = Expiring(self._read, ttl_seconds)

    def describe(self) -> Iterator[Metric]:
        """The families, without reading the database (used at registration)."""
        for name, (doc, labels) in METRICS.items():
            yield GaugeMetricFamily(name, doc, labels=labels)

    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        try:
            with self._sessions() as session:
                return [(name, row.result) for name, row in latest_results(session)]
        except SQLAlchemyError:
            log.warning("cannot read drift results for /metrics", exc_info=True)
            return []

    def collect(self) -> Iterator[Metric]:
        """One sample per model, version, variant (and feature) of the newest results."""
        families = {
            name: GaugeMetricFamily(name, doc, labels=labels)
            for name, (doc, labels) in METRICS.items()
        }

        def put(metric: str, labels: list[str], value: float | None) -> None:
            if value is not None:
                families[metric].add_metric(labels, float(value))

        now = self._clock.now()
        for model, result in self._results.get():
            age = (now - datetime.fromisoformat(result["computed_at"])).total_seconds()
            if self._stale_after is not None and age > self._stale_after:
                continue  # a retired or idle version: its series leave the exposition
            key = [model, str(result["version"]), str(result["variant"])]
            put("driftloop_drift_result_age_seconds", key, max(age, 0.0))
            ref = result["reference"]
            put("driftloop_drifted_features_ratio", key, ref["drifted_share"])
            put("driftloop_dataset_drifted", key, _flag(ref["dataset_drift"]))
            for f in ref["features"]:
                labels = [*key, f["name"], f["method"]]
                put("driftloop_feature_drift_statistic", labels, f["statistic"])
                put("driftloop_feature_drift_p_value", labels, f["p_value"])
                put("driftloop_feature_drift_p_adjusted", labels, f["p_adjusted"])
                put("driftloop_feature_drift_effect_size", labels, f["effect_size"])
                put("driftloop_feature_drifted", labels, _flag(f["drifted"]))
            previous = result.get("previous")
            if previous:
                put("driftloop_drifted_features_vs_previous_ratio", key, previous["drifted_share"])
                for f in previous["features"]:
                    labels = [*key, f["name"], f["method"]]
                    put("driftloop_feature_drift_vs_previous_effect_size", labels, f["effect_size"])
                    put("driftloop_feature_drifted_vs_previous", labels, _flag(f["drifted"]))
            prediction = (result.get("prediction") or {}).get("reference")
            if prediction and prediction["statistic"] is not None:
                labels = [*key, prediction["method"]]
                put("driftloop_prediction_drift_effect_size", labels, prediction["effect_size"])
                put("driftloop_prediction_drift_p_value", labels, prediction["p_value"])
                put("driftloop_prediction_drifted", labels, _flag(prediction["drifted"]))
            quality = result["quality"]
            put("driftloop_ood_records_ratio", key, quality["ood_records_ratio"])
            put("driftloop_drift_window_records", key, result["records"])
            for name, q in quality["features"].items():
                labels = [*key, name]
                put("driftloop_feature_missing_ratio", labels, q.get("missing_ratio"))
                put("driftloop_feature_type_errors_ratio", labels, q.get("type_errors_ratio"))
                put("driftloop_feature_unseen_ratio", labels, q.get("unseen_ratio"))
                put("driftloop_feature_out_of_range_ratio", labels, q.get("out_of_range_ratio"))
            put(
                "driftloop_drift_evaluated_timestamp_seconds",
                key,
                datetime.fromisoformat(result["computed_at"]).timestamp(),
            )
        yield from families.values()
