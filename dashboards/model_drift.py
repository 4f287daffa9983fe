"""Rows of the model dashboard about the inputs: drift against the reference, and data quality."""

from __future__ import annotations

from driftloop.dashboards.panels import (
    GREEN,
    RED,
    YELLOW,
    Item,
    Q,
    row,
    stat,
    steps,
    table,
    timeseries,
    value_names,
)
from driftloop.dashboards.selectors import ONE_MODEL as M
from driftloop.dashboards.selectors import RATE as RI
from driftloop.dashboards.selectors import VARIANTS as V


def drift() -> list[Item]:
    """The drift row: dataset and per-feature drift, against the reference and last window."""
    return [
        row("Drift"),
        stat(
            "Dataset drift",
            "Latest evaluation of the selected variants: drift when the share "
            "of drifted features reaches its threshold.",
            [Q(f"max(driftloop_dataset_drifted{{{V}}})")],
            width=4,
            graph=False,
            thresholds=steps((None, GREEN), (1, RED)),
            mappings=value_names({0: ("no drift", GREEN), 1: ("drift", RED)}),
        ),
        stat(
            "Drifted share",
            "Share of features whose adjusted p-value is under alpha and whose "
            "effect size passes the materiality threshold.",
            [Q(f"max(driftloop_drifted_features_ratio{{{V}}})")],
            unit="percentunit",
            width=5,
            thresholds=steps((None, GREEN), (0.25, YELLOW), (0.5, RED)),
        ),
        stat(
            "Prediction drift",
            "Drift of the model's predictions against the reference.",
            [Q(f"max(driftloop_prediction_drifted{{{V}}})")],
            width=5,
            graph=False,
            thresholds=steps((None, GREEN), (1, RED)),
            mappings=value_names({0: ("no drift", GREEN), 1: ("drift", RED)}),
        ),
        stat(
            "Out-of-distribution records",
            "Share of the window's records the input guard "
            "flagged (values far outside the reference).",
            [Q(f"max(driftloop_ood_records_ratio{{{V}}})")],
            unit="percentunit",
            width=5,
            thresholds=steps((None, GREEN), (0.01, YELLOW), (0.05, RED)),
        ),
        stat(
            "Last evaluation",
            "Time since the monitor last evaluated drift for this model.",
            [Q(f"time() - max(driftloop_drift_evaluated_timestamp_seconds{{{V}}})")],
            unit="s",
            width=5,
            graph=False,
            thresholds=steps((None, GREEN), (600, YELLOW), (3600, RED)),
        ),
        timeseries(
            "Effect size by feature",
            "Wasserstein distance (numbers, normalised by the "
            "reference spread) or Jensen-Shannon distance (categories) against the reference; "
            "the dashed line is the default materiality threshold.",
            [
                Q(
                    "max by (variant, feature, method)"
                    f" (driftloop_feature_drift_effect_size{{{V}}})",
                    "{{variant}} {{feature}} ({{method}})",
                )
            ],
            width=12,
            min_value=0,
            thresholds=steps((None, GREEN), (0.1, RED)),
        ),
        timeseries(
            "Adjusted p-value by feature",
            "Benjamini-Hochberg adjusted p-value of each "
            "feature's test; under alpha (dashed) and material means drift.",
            [
                Q(
                    "max by (variant, feature, method)"
                    f" (driftloop_feature_drift_p_adjusted{{{V}}})",
                    "{{variant}} {{feature}} ({{method}})",
                )
            ],
            width=12,
            min_value=0,
            max_value=1,
            thresholds=steps((None, RED), (0.05, GREEN)),
        ),
        table(
            "Features",
            "Latest evaluation per feature against the reference, and against the "
            "window before it.",
            [
                Q(
                    f"max by (version, variant, feature, method) "
                    f"(driftloop_feature_drift_effect_size{{{V}}})"
                ),
                Q(
                    f"max by (version, variant, feature, method) "
                    f"(driftloop_feature_drift_statistic{{{V}}})"
                ),
                Q(
                    f"max by (version, variant, feature, method) "
                    f"(driftloop_feature_drift_p_adjusted{{{V}}})"
                ),
                Q(f"max by (version, variant, feature, method) (driftloop_feature_drifted{{{V}}})"),
                Q(
                    f"max by (version, variant, feature, method) "
                    f"(driftloop_feature_drift_vs_previous_effect_size{{{V}}})"
                ),
            ],
            rename={
                "Value #A": "effect size",
                "Value #B": "statistic",
                "Value #C": "adjusted p",
                "Value #D": "drifted",
                "Value #E": "effect vs previous window",
            },
            height=9,
        ),
        timeseries(
            "Drifted share against the previous window",
            "Share of features that moved "
            "between two consecutive windows: sudden changes rather than slow drift.",
            [
                Q(
                    f"max by (variant) (driftloop_drifted_features_vs_previous_ratio{{{V}}})",
                    "{{variant}}",
                )
            ],
            unit="percentunit",
            width=12,
            min_value=0,
            max_value=1,
        ),
        timeseries(
            "Prediction drift effect size",
            "Drift of the predictions against the reference.",
            [
                Q(
                    f"max by (variant, method) (driftloop_prediction_drift_effect_size{{{V}}})",
                    "{{variant}} ({{method}})",
                )
            ],
            width=12,
            min_value=0,
        ),
    ]


def quality() -> list[Item]:
    """The quality row: missing, out-of-range, wrong-typed and unseen values; volume."""
    return [
        row("Quality"),
        timeseries(
            "Missing values by feature",
            "Share of the window's records missing the feature.",
            [Q(f"max by (feature) (driftloop_feature_missing_ratio{{{V}}})", "{{feature}}")],
            unit="percentunit",
            width=8,
            min_value=0,
        ),
        timeseries(
            "Out of reference range by feature",
            "Share of numbers outside the reference's range (numerical features).",
            [
                Q(
                    f"max by (feature) (driftloop_feature_out_of_range_ratio{{{V}}})",
                    "{{feature}}",
                )
            ],
            unit="percentunit",
            width=8,
            min_value=0,
        ),
        timeseries(
            "Type errors and unseen categories",
            "Share of values of the wrong type, and of categories the reference never showed.",
            [
                Q(
                    f"max by (feature) (driftloop_feature_type_errors_ratio{{{V}}})",
                    "{{feature}} type errors",
                ),
                Q(
                    f"max by (feature) (driftloop_feature_unseen_ratio{{{V}}})",
                    "{{feature}} unseen",
                ),
            ],
            unit="percentunit",
            width=8,
            min_value=0,
        ),
        timeseries(
            "Records / s by variant",
            "Records the monitor stored for this model.",
            [
                Q(
                    "sum by (variant)"
                    f' (rate(driftloop_ingest_records_total{{{M}, variant=~"$variant",'
                    f' outcome="stored"}}[{RI}]))',
                    "{{variant}}",
                )
            ],
            unit="reqps",
            width=12,
        ),
        timeseries(
            "Records in the drift window",
            "Records the latest drift evaluation was computed on.",
            [Q(f"max by (variant) (driftloop_drift_window_records{{{V}}})", "{{variant}}")],
            width=12,
        ),
    ]
