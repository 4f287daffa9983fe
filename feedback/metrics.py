"""Counters the feedback endpoints update as they work (on the monitor's injected registry)."""

from __future__ import annotations

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter

from driftloop.feedback.labels import LabelResult


class FeedbackMetrics:
    """Labels received by outcome, corrections, snapshots written and pruned."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.labels = Counter(
            "driftloop_feedback_labels_total",
            "Labels received, by model ('' while pending: no record shows the request id yet) "
            "and outcome (new, corrected, duplicate).",
            ["model", "outcome"],
            registry=registry,
        )
        self.corrections = Counter(
            "driftloop_feedback_corrections_total",
            "Labels that replaced an earlier, different label of the same request id.",
            ["model"],
            registry=registry,
        )
        self.snapshots = Counter(
            "driftloop_dataset_snapshots_total",
            "Dataset snapshots written.",
            ["model"],
            registry=registry,
        )
        self.snapshots_pruned = Counter(
            "driftloop_dataset_snapshots_pruned_total",
            "Dataset snapshots this leader removed past DRIFTLOOP_RETENTION__SNAPSHOT_DAYS "
            "(outcome=removed), or kept because their folder could not be removed "
            "(outcome=failed; retried on the next run).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("removed", "failed"):
            self.snapshots_pruned.labels(outcome)

    def count_labels(self, result: LabelResult) -> None:
        """Add one upload's outcomes."""
        for model, outcomes in result.by_model.items():
            for outcome, count in outcomes.items():
                if count:
                    self.labels.labels(model, outcome).inc(count)
            if outcomes.get("corrected"):
                self.corrections.labels(model).inc(outcomes["corrected"])


def get_metrics(request: Request) -> FeedbackMetrics:
    """FastAPI dependency: the feedback counters of the app serving this request."""
    metrics: FeedbackMetrics = request.app.state.feedback_metrics
    return metrics
