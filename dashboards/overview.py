"""Driftloop / Overview: every model at a glance, and the health of the Driftloop processes."""

from __future__ import annotations

from typing import Any

from driftloop.dashboards.overview_processes import processes
from driftloop.dashboards.panels import (
    GREEN,
    RED,
    YELLOW,
    Q,
    add,
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
from driftloop.dashboards.render import to_dict

UID = "driftloop-overview"
M = 'model=~"$model"'
RI = "$__rate_interval"
PRIMARY = 'metric=~"accuracy|mae"'
CHAMPION = f'{M}, variant="champion", window="$window", class="", {PRIMARY}'
STATE = "* on (model) group_left (state) (max by (model, state) (driftloop_rollout_state) == 1)"


def build() -> dict[str, Any]:
    """The overview dashboard as Grafana JSON."""
    dashboard = (
        base(
            UID,
            "Driftloop / Overview",
            "Traffic, latency, errors, resources, drift, "
            "performance and rollouts of every model Driftloop watches.",
            ["overview"],
        )
        .link(dashboard_links())
        .with_variable(
            query_variable("model", "Model", "label_values(driftloop_ingest_records_total, model)")
        )
        .with_variable(
            query_variable(
                "window",
                "Performance window",
                "label_values(driftloop_performance_value, window)",
                multi=False,
                include_all=False,
            )
        )
        .with_row(row("Health"))
        .with_panel(
            stat(
                "Monitor replicas",
                "Monitor processes Prometheus scrapes right now.",
                [Q('count(driftloop_build_info{component="monitor"})')],
                width=4,
                thresholds=steps((None, RED), (1, GREEN)),
                graph=False,
            )
        )
        .with_panel(
            stat(
                "Job leader",
                "Replicas that hold the leader lock and run the periodic jobs: "
                "exactly one is healthy.",
                [Q("sum(driftloop_leader)")],
                width=4,
                thresholds=steps((None, RED), (1, GREEN), (2, RED)),
                graph=False,
            )
        )
        .with_panel(
            stat(
                "Models",
                "Models that sent records in the selected range.",
                [Q(f"count(count by (model) (driftloop_ingest_records_total{{{M}}}))")],
                width=4,
                graph=False,
            )
        )
        .with_panel(
            stat(
                "Models drifting",
                "Models whose latest evaluation flags dataset drift.",
                [Q(f"count(max by (model) (driftloop_dataset_drifted{{{M}}}) == 1) or vector(0)")],
                width=4,
                thresholds=steps((None, GREEN), (1, RED)),
                graph=False,
            )
        )
        .with_panel(
            stat(
                "Records / s",
                "Records stored by the monitor, all selected models.",
                [Q(f'sum(rate(driftloop_ingest_records_total{{{M}, outcome="stored"}}[{RI}]))')],
                unit="reqps",
                width=4,
            )
        )
        .with_panel(
            stat(
                "Alerts firing",
                "Driftloop alerts firing now (see the runbooks).",
                [Q('count(ALERTS{alertname=~"Driftloop.*", alertstate="firing"}) or vector(0)')],
                width=4,
                thresholds=steps((None, GREEN), (1, RED)),
                graph=False,
            )
        )
        .with_row(row("Traffic"))
        .with_panel(
            timeseries(
                "Records stored / s by model and variant",
                "Records the monitor stored, whatever captured them (sidecar or middleware).",
                [
                    Q(
                        "sum by (model, variant) (rate(driftloop_ingest_records_total"
                        f'{{{M}, outcome="stored"}}[{RI}]))',
                        "{{model}} {{variant}}",
                    )
                ],
                unit="reqps",
                width=6,
            )
        )
        .with_panel(
            timeseries(
                "Predictions / s by model and variant",
                "Requests the sidecars proxied to the Bentos.",
                [
                    Q(
                        "sum by (model, variant)"
                        f" (rate(driftloop_sidecar_requests_total{{{M}}}[{RI}]))",
                        "{{model}} {{variant}}",
                    )
                ],
                unit="reqps",
                width=6,
            )
        )
        .with_panel(
            timeseries(
                "Latency p50 / p99 at the sidecar",
                "Time from request to the Bento's last byte.",
                [
                    Q(
                        "histogram_quantile(0.99, sum by (model, le) (rate("
                        f"driftloop_sidecar_request_duration_seconds_bucket{{{M}}}[{RI}])))",
                        "{{model}} p99",
                    ),
                    Q(
                        "histogram_quantile(0.5, sum by (model, le) (rate("
                        f"driftloop_sidecar_request_duration_seconds_bucket{{{M}}}[{RI}])))",
                        "{{model}} p50",
                    ),
                ],
                unit="s",
                width=6,
            )
        )
        .with_panel(
            timeseries(
                "Error ratio by model",
                "Share of proxied requests answered with a 5xx.",
                [
                    Q(
                        "sum by (model)"
                        f' (rate(driftloop_sidecar_requests_total{{{M}, code=~"5.."}}[{RI}]))'
                        f" / sum by (model) (rate(driftloop_sidecar_requests_total{{{M}}}[{RI}]))"
                        " or 0 * sum by (model)"
                        f" (rate(driftloop_sidecar_requests_total{{{M}}}[{RI}]))",
                        "{{model}}",
                    )
                ],
                unit="percentunit",
                width=6,
                min_value=0,
                thresholds=steps((None, GREEN), (0.01, YELLOW), (0.05, RED)),
            )
        )
        .with_row(row("Models"))
        .with_panel(
            table(
                "Models",
                "Latest drift and live performance of each model's champion over the "
                "selected window (primary metric: accuracy, or MAE for regressions).",
                [
                    Q(f"max by (model) (driftloop_drifted_features_ratio{{{M}}})"),
                    Q(f"max by (model, metric) (driftloop_performance_value{{{CHAMPION}}})"),
                    Q(f"max by (model, metric) (driftloop_performance_lower{{{CHAMPION}}})"),
                    Q(f"max by (model, metric) (driftloop_performance_upper{{{CHAMPION}}})"),
                    Q(
                        "max by (model) (driftloop_label_coverage_ratio"
                        f'{{{M}, variant="champion", window="$window"}})'
                    ),
                ],
                rename={
                    "Value #A": "drifted share",
                    "Value #B": "champion metric",
                    "Value #C": "lower",
                    "Value #D": "upper",
                    "Value #E": "label coverage",
                },
                width=14,
                height=8,
            )
        )
        .with_panel(
            table(
                "Rollouts",
                "The newest rollout of each model: state, step and challenger weight.",
                [
                    Q(f"max by (model) (driftloop_rollout_weight_ratio{{{M}}}) {STATE}"),
                    Q(f"max by (model) (driftloop_rollout_step{{{M}}}) {STATE}"),
                ],
                rename={"Value #A": "challenger weight", "Value #B": "step"},
                width=10,
                height=8,
            )
        )
        .with_panel(
            state_timeline(
                "Drift status",
                "Dataset drift flag of each model over time.",
                [Q(f"max by (model) (driftloop_dataset_drifted{{{M}}})", "{{model}}")],
                mappings=value_names({0: ("no drift", GREEN), 1: ("drift", RED)}),
                width=12,
            )
        )
        .with_panel(
            state_timeline(
                "Rollout state",
                "State of each model's newest rollout over time.",
                [
                    Q(
                        f"max by (model, state) (driftloop_rollout_state{{{M}}}) == 1",
                        "{{model}}: {{state}}",
                    )
                ],
                mappings=value_names({1: ("in state", "blue")}),
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Champion performance",
                "Primary metric of each model's champion with its interval.",
                [
                    Q(f"driftloop_performance_value{{{CHAMPION}}}", "{{model}} {{metric}}"),
                    Q(f"driftloop_performance_lower{{{CHAMPION}}}", "{{model}} {{metric}} lower"),
                    Q(f"driftloop_performance_upper{{{CHAMPION}}}", "{{model}} {{metric}} upper"),
                ],
                width=12,
                bounds=True,
            )
        )
        .with_panel(
            timeseries(
                "Drifted share of features",
                "Share of features drifting in each model's evaluation.",
                [
                    Q(
                        f"max by (model, variant) (driftloop_drifted_features_ratio{{{M}}})",
                        "{{model}} {{variant}}",
                    )
                ],
                unit="percentunit",
                width=12,
                min_value=0,
                max_value=1,
                thresholds=steps((None, GREEN), (0.5, RED)),
            )
        )
    )
    dashboard = add(dashboard, processes())
    return to_dict(dashboard)
