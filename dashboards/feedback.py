"""Driftloop / Feedback: labels arriving, retraining triggers, and webhook deliveries."""

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
    steps,
    table,
    timeseries,
)
from driftloop.dashboards.render import to_dict

UID = "driftloop-feedback"
M = 'model=~"$model"'
RI = "$__rate_interval"
DELIVERIES = "driftloop_webhook_deliveries_total"


def build() -> dict[str, Any]:
    """The feedback dashboard as Grafana JSON."""
    dashboard = (
        base(
            UID,
            "Driftloop / Feedback",
            "Labels joined to predictions, retraining triggers "
            "and the webhook outbox that tells the training system.",
            ["feedback"],
        )
        .link(dashboard_links())
        .with_variable(
            query_variable("model", "Model", "label_values(driftloop_ingest_records_total, model)")
        )
        .with_variable(
            query_variable(
                "window",
                "Coverage window",
                "label_values(driftloop_label_coverage_ratio, window)",
                multi=False,
                include_all=False,
            )
        )
        .with_row(row("Webhooks"))
        .with_panel(
            stat(
                "Outbox pending",
                "Webhook messages not yet delivered (including held ones).",
                [Q("max(driftloop_webhook_pending_messages)")],
                width=6,
                thresholds=steps((None, GREEN), (1, YELLOW), (10, RED)),
            )
        )
        .with_panel(
            stat(
                "Failed messages",
                "Messages that exhausted their retries: replay them once the receiver is fixed.",
                [Q("max(driftloop_webhook_failed_messages)")],
                width=6,
                graph=False,
                thresholds=steps((None, GREEN), (1, RED)),
            )
        )
        .with_panel(
            stat(
                "Endpoints disabled",
                "Webhook endpoints disabled after failing too long.",
                [Q("max(driftloop_webhook_endpoints_disabled)")],
                width=6,
                graph=False,
                thresholds=steps((None, GREEN), (1, RED)),
            )
        )
        .with_panel(
            stat(
                "Triggers in range",
                "Retraining triggers fired in the selected range.",
                [Q(f"sum(increase(driftloop_retrain_triggers_total{{{M}}}[$__range]))")],
                width=6,
                graph=False,
            )
        )
        .with_panel(
            timeseries(
                "Delivery attempts / s by result",
                "delivered: the receiver answered 2xx; "
                "retrying: failed, will be retried with backoff; failed: no retry left.",
                [Q(f"sum by (result) (rate({DELIVERIES}[{RI}]))", "{{result}}")],
                unit="ops",
                width=12,
                stack=True,
            )
        )
        .with_panel(
            timeseries(
                "Attempt latency p50 / p99",
                "Time one webhook POST took, until answer or error.",
                [
                    Q(
                        "histogram_quantile(0.99, sum by (le) (rate("
                        f"driftloop_webhook_attempt_duration_seconds_bucket[{RI}])))",
                        "p99",
                    ),
                    Q(
                        "histogram_quantile(0.5, sum by (le) (rate("
                        f"driftloop_webhook_attempt_duration_seconds_bucket[{RI}])))",
                        "p50",
                    ),
                ],
                unit="s",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Outbox",
                "Pending and failed webhook messages over time.",
                [
                    Q("max(driftloop_webhook_pending_messages)", "pending"),
                    Q("max(driftloop_webhook_failed_messages)", "failed"),
                ],
                width=24,
                height=6,
            )
        )
        .with_row(row("Triggers and labels"))
        .with_panel(
            table(
                "Triggers by model and reason",
                "Retraining triggers fired in the selected range.",
                [
                    Q(
                        "sum by (model, reason) (increase("
                        f"driftloop_retrain_triggers_total{{{M}}}[$__range]))"
                    )
                ],
                rename={"Value": "triggers in range"},
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Labels / s by model",
                "Labels received, by outcome (new or corrected).",
                [
                    Q(
                        "sum by (model, outcome)"
                        f" (rate(driftloop_feedback_labels_total{{{M}}}[{RI}]))",
                        "{{model}} {{outcome}}",
                    )
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Label coverage by model and variant",
                "Share of the window's predictions that have a label.",
                [
                    Q(
                        "max by (model, variant) "
                        f'(driftloop_label_coverage_ratio{{{M}, window="$window"}})',
                        "{{model}} {{variant}}",
                    )
                ],
                unit="percentunit",
                width=12,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            stat(
                "Labels waiting for their record",
                "Labels whose request id no record has shown yet: they are joined when the "
                "record arrives. A steady rise means labels name unknown request ids.",
                [Q("max(driftloop_feedback_pending_labels)")],
                width=6,
                height=8,
            )
        )
        .with_panel(
            stat(
                "Dataset snapshots in range",
                "Snapshots written through POST /v1/models/{name}/datasets.",
                [Q(f"sum(increase(driftloop_dataset_snapshots_total{{{M}}}[$__range]))")],
                width=6,
                height=8,
                graph=False,
            )
        )
    )
    return to_dict(dashboard)
