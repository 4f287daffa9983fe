"""Driftloop / Model: one model's drift per feature, quality, performance, labels and rollout."""

from __future__ import annotations

from typing import Any

from driftloop.dashboards.overview import ROLLOUT_STATES
from driftloop.dashboards.panels import (
    GREEN,
    RED,
    YELLOW,
    Q,
    base,
    dashboard_links,
    query_variable,
    row,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
    value_names,
)
from driftloop.dashboards.render import prometheus_annotation, to_dict

UID = "driftloop-model"
M = 'model="$model"'
RI = "$__rate_interval"


def build() -> dict[str, Any]:
    """The model dashboard as Grafana JSON."""
    dashboard = (
        base(UID, "Driftloop / Model", "Drift per feature, data quality, live performance with "
             "intervals, label coverage, and champion vs challenger for one model.", ["model"])
        .link(dashboard_links())
        .with_variable(query_variable(
            "model", "Model", "label_values(driftloop_ingest_records_total, model)",
            multi=False, include_all=False))
        .with_variable(query_variable(
            "variant", "Variant",
            'label_values(driftloop_ingest_records_total{model="$model"}, variant)'))
        .with_row(row("Drift"))
        .with_panel(stat(
            "Dataset drift", "Latest evaluation: drift when the drifted share passes its threshold.",
            [Q(f"max(driftloop_drift_dataset_drifted{{{M}}})")], width=6, graph=False,
            thresholds=steps((None, GREEN), (1, RED)),
            mappings=value_names({0: ("no drift", GREEN), 1: ("drift", RED)})))
        .with_panel(stat(
            "Drifted share", "Share of features whose adjusted p-value is under alpha and whose "
            "effect size passes the materiality threshold.",
            [Q(f"max(driftloop_drift_drifted_share_ratio{{{M}}})")], unit="percentunit", width=6,
            thresholds=steps((None, GREEN), (0.25, YELLOW), (0.5, RED))))
        .with_panel(stat(
            "Prediction drift", "Drift of the model's predictions against the reference.",
            [Q(f"max(driftloop_drift_prediction_drifted{{{M}}})")], width=6, graph=False,
            thresholds=steps((None, GREEN), (1, RED)),
            mappings=value_names({0: ("no drift", GREEN), 1: ("drift", RED)})))
        .with_panel(stat(
            "Last evaluation", "Time since the monitor last evaluated drift for this model.",
            [Q(f"time() - max(driftloop_drift_evaluated_timestamp_seconds{{{M}}})")],
            unit="s", width=6, graph=False,
            thresholds=steps((None, GREEN), (600, YELLOW), (3600, RED))))
        .with_panel(timeseries(
            "Effect size by feature", "Wasserstein distance (numbers, normalised by the "
            "reference spread) or Jensen-Shannon distance (categories); the dashed line is "
            "the materiality threshold.",
            [Q(f"max by (feature, method) (driftloop_drift_effect_size{{{M}}})",
               "{{feature}} ({{method}})")], width=12, min_value=0,
            thresholds=steps((None, GREEN), (0.1, RED))))
        .with_panel(timeseries(
            "Adjusted p-value by feature", "Benjamini-Hochberg adjusted p-value of each feature's "
            "test; under alpha (dashed) and material means drift.",
            [Q(f"max by (feature, method) (driftloop_drift_p_value{{{M}}})",
               "{{feature}} ({{method}})")], width=12, min_value=0, max_value=1,
            thresholds=steps((None, RED), (0.05, GREEN))))
        .with_panel(table(
            "Features", "Latest evaluation per feature.",
            [Q(f"max by (feature, method) (driftloop_drift_effect_size{{{M}}})"),
             Q(f"max by (feature, method) (driftloop_drift_p_value{{{M}}})"),
             Q(f"max by (feature, method) (driftloop_drift_feature_drifted{{{M}}})")],
            rename={"Value #A": "effect size", "Value #B": "adjusted p", "Value #C": "drifted"},
            height=8))
        .with_row(row("Quality"))
        .with_panel(timeseries(
            "Missing values by feature", "Share of records with the feature missing.",
            [Q(f"max by (feature) (driftloop_quality_missing_ratio{{{M}}})", "{{feature}}")],
            unit="percentunit", width=12, min_value=0))
        .with_panel(timeseries(
            "Records / s by variant", "Records the monitor stored for this model.",
            [Q(f'sum by (variant) (rate(driftloop_ingest_records_total{{{M}, variant=~"$variant",'
               f' outcome="stored"}}[{RI}]))', "{{variant}}")], unit="reqps", width=12))
        .with_row(row("Performance"))
        .with_panel(timeseries(
            "Primary metric with interval by variant", "Metric on labeled rows with its "
            "confidence interval (lower and upper bound).",
            [Q(f'driftloop_performance_value{{{M}, variant=~"$variant"}}',
               "{{variant}} {{version}} {{metric}}"),
             Q(f'driftloop_performance_lower{{{M}, variant=~"$variant"}}',
               "{{variant}} {{version}} {{metric}} lower"),
             Q(f'driftloop_performance_upper{{{M}, variant=~"$variant"}}',
               "{{variant}} {{version}} {{metric}} upper")], width=12))
        .with_panel(timeseries(
            "Labeled rows by variant", "Rows with a joined label the metrics are computed on.",
            [Q(f'driftloop_performance_rows{{{M}, variant=~"$variant"}}',
               "{{variant}} {{version}}")], width=12))
        .with_panel(timeseries(
            "Label coverage", "Share of recent records that have a label.",
            [Q(f"driftloop_label_coverage_ratio{{{M}}}", "coverage")], unit="percentunit",
            width=12, min_value=0, max_value=1))
        .with_panel(timeseries(
            "Label latency p50 / p90", "Time from a prediction to its label.",
            [Q("histogram_quantile(0.5, sum by (le) (rate("
               f"driftloop_label_delay_seconds_bucket{{{M}}}[{RI}])))", "p50"),
             Q("histogram_quantile(0.9, sum by (le) (rate("
               f"driftloop_label_delay_seconds_bucket{{{M}}}[{RI}])))", "p90")],
            unit="s", width=12))
        .with_row(row("Champion vs challenger"))
        .with_panel(state_timeline(
            "Rollout state", "Where the champion vs challenger state machine is.",
            [Q(f"max(driftloop_rollout_state{{{M}}})", "state")],
            mappings=value_names(ROLLOUT_STATES), width=12, height=5))
        .with_panel(timeseries(
            "Challenger share of traffic", "Weight the routing policy gives the challenger.",
            [Q(f"max(driftloop_rollout_weight_ratio{{{M}}})", "challenger weight")],
            unit="percentunit", width=12, height=5, min_value=0, max_value=1))
        .with_panel(timeseries(
            "Challenger minus champion with confidence sequence",
            "Difference in the primary metric; promotion when the lower bound clears the "
            "non-inferiority margin, roll-back when the upper bound falls under it.",
            [Q(f"max(driftloop_rollout_difference{{{M}}})", "difference"),
             Q(f"max(driftloop_rollout_difference_lower{{{M}}})", "lower"),
             Q(f"max(driftloop_rollout_difference_upper{{{M}}})", "upper")], width=12))
        .with_panel(timeseries(
            "Sample ratio p-value", "Chi-square test of the observed split against the "
            "configured weight; under 0.001 the split is broken (SRM).",
            [Q(f"max(driftloop_rollout_srm_p_value{{{M}}})", "p-value")], width=12,
            min_value=0, max_value=1, thresholds=steps((None, RED), (0.001, GREEN))))
        .with_panel(table(
            "Decision history", "Decisions of the rollout in the selected range.",
            [Q(f"sum by (decision) (increase(driftloop_rollout_decisions_total{{{M}}}[$__range]))"
               )], rename={"Value": "decisions in range"}, height=6))
    )
    decisions = prometheus_annotation(
        "Rollout decisions",
        f"changes(driftloop_rollout_decisions_total{{{M}}}[2m]) > 0",
        "{{decision}}",
        "rollout decision {{decision}} for {{model}}",
        "purple",
    )
    return to_dict(dashboard, [decisions])
