"""The performance row of the model dashboard: live metrics with intervals, estimated against
realized performance, labels, segments."""

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
)
from driftloop.dashboards.selectors import ONE_MODEL as M
from driftloop.dashboards.selectors import RATE as RI
from driftloop.dashboards.selectors import VARIANTS
from driftloop.dashboards.selectors import WINDOW as GROUP
from driftloop.dashboards.selectors import WINDOW_METRIC as PERF

ROLES = ("champion", "challenger", "shadow")
"""The variants, a fixed set: series named by them can carry fixed overrides (the bands)."""


def estimated_vs_realized() -> Item:
    """One panel: the estimated metric (before labels) with its interval as a band, and the
    metric realized on labeled rows, per variant."""
    estimated = f'{VARIANTS}, metric="$metric"'
    return timeseries(
        "$metric estimated vs realized",
        "Estimated from the model's scores without labels (docs/estimation.md), over the "
        "estimation's recent window, with its interval (band); realized on the labeled rows of "
        "the window. Where they part, the estimate cannot be trusted for this model (concept "
        "shift). Metrics both have: accuracy, roc_auc, mae, rmse.",
        [
            Q(
                "max by (variant) "
                f'(driftloop_performance_estimated{{{estimated}, bound="estimate"}})',
                "{{variant}} estimated",
            ),
            Q(
                f'max by (variant) (driftloop_performance_estimated{{{estimated}, bound="lower"}})',
                "{{variant}} estimated lower",
            ),
            Q(
                f'max by (variant) (driftloop_performance_estimated{{{estimated}, bound="upper"}})',
                "{{variant}} estimated upper",
            ),
            Q(f"max by (variant) (driftloop_performance_value{{{PERF}}})", "{{variant}} realized"),
        ],
        width=12,
        bounds=True,
        bands={f"{v} estimated upper": f"{v} estimated lower" for v in ROLES},
    )


def performance() -> list[Item]:
    """The performance row: metrics with intervals by variant, labels, segments."""
    return [
        row("Performance"),
        timeseries(
            "$metric with interval by variant",
            "The metric on labeled rows of the window, with "
            "its confidence interval (dashed: lower and upper bound).",
            [
                Q(f"driftloop_performance_value{{{PERF}}}", "{{variant}} {{version}}"),
                Q(f"driftloop_performance_lower{{{PERF}}}", "{{variant}} {{version}} lower"),
                Q(f"driftloop_performance_upper{{{PERF}}}", "{{variant}} {{version}} upper"),
            ],
            width=12,
            bounds=True,
        ),
        table(
            "All metrics by variant",
            "Every whole-model metric of the window, with interval and the labeled rows behind it.",
            [
                Q(
                    "max by (version, variant, metric)"
                    f' (driftloop_performance_value{{{GROUP}, class=""}})'
                ),
                Q(
                    "max by (version, variant, metric)"
                    f' (driftloop_performance_lower{{{GROUP}, class=""}})'
                ),
                Q(
                    "max by (version, variant, metric)"
                    f' (driftloop_performance_upper{{{GROUP}, class=""}})'
                ),
                Q(
                    "max by (version, variant, metric)"
                    f' (driftloop_performance_samples{{{GROUP}, class=""}})'
                ),
            ],
            rename={
                "Value #A": "value",
                "Value #B": "lower",
                "Value #C": "upper",
                "Value #D": "labeled rows",
            },
            width=12,
        ),
        estimated_vs_realized(),
        timeseries(
            "Label coverage by variant",
            "Share of the window's predictions that have a label.",
            [Q(f"driftloop_label_coverage_ratio{{{GROUP}}}", "{{variant}} {{version}}")],
            unit="percentunit",
            width=6,
            min_value=0,
            max_value=1,
        ),
        timeseries(
            "Label latency p50 / p90",
            "Time from a prediction to its label, over the window's labeled rows.",
            [
                Q(
                    "histogram_quantile(0.5, sum by (variant, le) ("
                    f"driftloop_label_latency_seconds_bucket{{{GROUP}}}))",
                    "{{variant}} p50",
                ),
                Q(
                    "histogram_quantile(0.9, sum by (variant, le) ("
                    f"driftloop_label_latency_seconds_bucket{{{GROUP}}}))",
                    "{{variant}} p90",
                ),
            ],
            unit="s",
            width=6,
        ),
        timeseries(
            "Labels / s by outcome",
            "Labels received for this model: new, corrected, duplicate.",
            [
                Q(
                    f"sum by (outcome) (rate(driftloop_feedback_labels_total{{{M}}}[{RI}]))",
                    "{{outcome}}",
                )
            ],
            unit="reqps",
            width=6,
        ),
        stat(
            "Performance computed",
            "Time since the monitor last computed this model's live performance.",
            [Q(f"time() - max(driftloop_performance_computed_timestamp_seconds{{{M}}})")],
            unit="s",
            width=6,
            height=8,
            graph=False,
            thresholds=steps((None, GREEN), (600, YELLOW), (3600, RED)),
        ),
        table(
            "Segments: best minus worst",
            "Gap in the primary metric between the best and worst "
            "segment of each segment feature (segments with enough rows).",
            [
                Q(
                    f"max by (version, variant, metric, feature) "
                    f"(driftloop_performance_segment_gap{{{GROUP}}})"
                )
            ],
            rename={"Value": "gap"},
            width=12,
            height=8,
        ),
        table(
            "Primary metric by segment",
            "The primary metric (accuracy or MAE) for each value of a segment feature, with "
            "its labeled rows.",
            [
                Q(
                    "max by (version, variant, feature, segment) "
                    f"(driftloop_performance_segment_value{{{GROUP}}})"
                ),
                Q(
                    "max by (version, variant, feature, segment) "
                    f"(driftloop_performance_segment_samples{{{GROUP}}})"
                ),
            ],
            rename={"Value #A": "metric", "Value #B": "labeled rows"},
            width=12,
            height=8,
        ),
    ]
