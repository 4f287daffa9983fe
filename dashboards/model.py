"""Driftloop / Model: one model's drift per feature, quality, performance, labels and rollout."""

from __future__ import annotations

from typing import Any

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
GROUP = f'{M}, variant=~"$variant", window="$window"'
PERF = f'{GROUP}, metric="$metric", class=""'


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
        .with_variable(query_variable(
            "window", "Window", 'label_values(driftloop_performance_value{model="$model"}, window)',
            multi=False, include_all=False))
        .with_variable(query_variable(
            "metric", "Metric",
            'label_values(driftloop_performance_value{model="$model", class=""}, metric)',
            multi=False, include_all=False))
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
            "$metric with interval by variant", "The metric on labeled rows of the window, with "
            "its confidence interval (dashed: lower and upper bound).",
            [Q(f'driftloop_performance_value{{{PERF}}}', "{{variant}} {{version}}"),
             Q(f'driftloop_performance_lower{{{PERF}}}', "{{variant}} {{version}} lower"),
             Q(f'driftloop_performance_upper{{{PERF}}}', "{{variant}} {{version}} upper")],
            width=12))
        .with_panel(table(
            "All metrics by variant", "Every whole-model metric of the window, with interval "
            "and the labeled rows behind it.",
            [Q(f'max by (version, variant, metric) (driftloop_performance_value{{{GROUP}, class=""}})'),
             Q(f'max by (version, variant, metric) (driftloop_performance_lower{{{GROUP}, class=""}})'),
             Q(f'max by (version, variant, metric) (driftloop_performance_upper{{{GROUP}, class=""}})'),
             Q(f'max by (version, variant, metric) (driftloop_performance_samples{{{GROUP}, class=""}})')],
            rename={"Value #A": "value", "Value #B": "lower", "Value #C": "upper",
                    "Value #D": "labeled rows"}, width=12))
        .with_panel(timeseries(
            "Label coverage by variant", "Share of the window's predictions that have a label.",
            [Q(f"driftloop_label_coverage_ratio{{{GROUP}}}", "{{variant}} {{version}}")],
            unit="percentunit", width=8, min_value=0, max_value=1))
        .with_panel(timeseries(
            "Label latency p50 / p90", "Time from a prediction to its label, over the window's "
            "labeled rows.",
            [Q("histogram_quantile(0.5, sum by (variant, le) ("
               f"driftloop_label_latency_seconds_bucket{{{GROUP}}}))", "{{variant}} p50"),
             Q("histogram_quantile(0.9, sum by (variant, le) ("
               f"driftloop_label_latency_seconds_bucket{{{GROUP}}}))", "{{variant}} p90")],
            unit="s", width=8))
        .with_panel(timeseries(
            "Labels / s by outcome", "Labels received for this model: new, corrected, duplicate.",
            [Q(f"sum by (outcome) (rate(driftloop_feedback_labels_total{{{M}}}[{RI}]))",
               "{{outcome}}")], unit="reqps", width=8))
        .with_panel(table(
            "Segments: best minus worst", "Gap in the primary metric between the best and worst "
            "segment of each segment feature (segments with enough rows).",
            [Q(f"max by (version, variant, metric, feature) "
               f"(driftloop_performance_segment_gap{{{GROUP}}})")],
            rename={"Value": "gap"}, width=24, height=6))
        .with_row(row("Champion vs challenger"))
        .with_panel(state_timeline(
            "Rollout state", "State of the newest rollout of the model.",
            [Q(f"max by (state) (driftloop_rollout_state{{{M}}}) == 1", "{{state}}")],
            mappings=value_names({1: ("in state", "blue")}), width=12, height=5))
        .with_panel(timeseries(
            "Challenger share of traffic", "Weight the routing policy gives the challenger at "
            "the rollout's current step.",
            [Q(f"max(driftloop_rollout_weight_ratio{{{M}}})", "challenger weight"),
             Q(f"max(driftloop_rollout_step{{{M}}})", "step")],
            unit="percentunit", width=12, height=5, min_value=0))
        .with_panel(timeseries(
            "Challenger minus champion with confidence sequence",
            "Difference in the primary metric (positive: challenger better) with the bounds of "
            "the always-valid confidence sequence; promotion when the lower bound clears the "
            "non-inferiority margin, roll-back when the upper bound falls under it.",
            [Q(f"max by (bound) (driftloop_rollout_difference{{{M}}})", "{{bound}}")],
            width=12))
        .with_panel(timeseries(
            "Labeled rows per arm", "Labeled rows behind the comparison.",
            [Q(f"max by (variant) (driftloop_rollout_labeled_samples{{{M}}})", "{{variant}}")],
            width=12))
        .with_panel(timeseries(
            "Guardrails: error ratio per arm", "Share of 5xx answers in the current phase.",
            [Q(f"max by (variant) (driftloop_rollout_error_ratio{{{M}}})", "{{variant}}")],
            unit="percentunit", width=8, min_value=0))
        .with_panel(timeseries(
            "Guardrails: p99 latency per arm", "p99 latency in the current phase.",
            [Q(f"max by (variant) (driftloop_rollout_latency_p99_seconds{{{M}}})", "{{variant}}")],
            unit="s", width=8))
        .with_panel(timeseries(
            "Sample ratio p-value", "Anytime-valid p-value of the split against the weight; "
            "a broken split (SRM) makes the comparison unreliable.",
            [Q(f"max(driftloop_rollout_srm_p_value{{{M}}})", "p-value")], width=8,
            min_value=0, max_value=1, thresholds=steps((None, RED), (0.001, GREEN))))
        .with_panel(table(
            "Checks", "1 while a check passes: error_rate, latency, sample_ratio.",
            [Q(f"max by (check) (driftloop_rollout_check_ok{{{M}}})")],
            rename={"Value": "passing"}, width=8, height=6,
            thresholds=steps((None, RED), (1, GREEN))))
        .with_panel(table(
            "Decision history", "Decisions taken by the model's rollouts, by kind (all time).",
            [Q(f"sum by (decision) (driftloop_rollout_decisions_total{{{M}}})")],
            rename={"Value": "decisions"}, width=16, height=6))
    )
    states = prometheus_annotation(
        "Rollout state changes",
        f"(driftloop_rollout_state{{{M}}} == 1) and on (model, state) "
        f"(changes(driftloop_rollout_state{{{M}}}[2m]) > 0)",
        "rollout: {{state}}",
        "the rollout of {{model}} entered {{state}}",
        "purple",
    )
    return to_dict(dashboard, [states])
