"""Driftloop / Model: one model's drift per feature, quality, performance, labels and rollout."""

from __future__ import annotations

from typing import Any

from driftloop.dashboards.model_drift import drift, quality
from driftloop.dashboards.model_performance import performance
from driftloop.dashboards.model_rollout import rollout
from driftloop.dashboards.panels import add, base, dashboard_links, query_variable
from driftloop.dashboards.render import prometheus_annotation, to_dict
from driftloop.dashboards.selectors import ONE_MODEL as M

UID = "driftloop-model"


def build() -> dict[str, Any]:
    """The model dashboard as Grafana JSON."""
    dashboard = (
        base(
            UID,
            "Driftloop / Model",
            "Drift per feature, data quality, live performance with "
            "intervals, label coverage, and champion vs challenger for one model.",
            ["model"],
        )
        .link(dashboard_links())
        .with_variable(
            query_variable(
                "model",
                "Model",
                "label_values(driftloop_ingest_records_total, model)",
                multi=False,
                include_all=False,
            )
        )
        .with_variable(
            query_variable(
                "variant",
                "Variant",
                'label_values(driftloop_ingest_records_total{model="$model"}, variant)',
            )
        )
        .with_variable(
            query_variable(
                "version",
                "Version",
                'label_values(driftloop_drift_window_records{model="$model"}, version)',
            )
        )
        .with_variable(
            query_variable(
                "window",
                "Window",
                'label_values(driftloop_performance_value{model="$model"}, window)',
                multi=False,
                include_all=False,
            )
        )
        .with_variable(
            query_variable(
                "metric",
                "Metric",
                'label_values(driftloop_performance_value{model="$model", class=""}, metric)',
                multi=False,
                include_all=False,
            )
        )
    )
    dashboard = add(dashboard, [*drift(), *quality(), *performance(), *rollout()])
    states = prometheus_annotation(
        "Rollout state changes",
        f"(driftloop_rollout_state{{{M}}} == 1) and on (model, state) "
        f"(changes(driftloop_rollout_state{{{M}}}[2m]) > 0)",
        "rollout: {{state}}",
        "the rollout of {{model}} entered {{state}}",
        "purple",
    )
    return to_dict(dashboard, [states])
