"""Driftloop / Serving: the sidecars in front of the Bentos, their traffic and their capture."""

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
    timeseries,
)
from driftloop.dashboards.render import to_dict

UID = "driftloop-serving"
M = 'model=~"$model"'
RI = "$__rate_interval"
REQ = "driftloop_sidecar_requests_total"
LATENCY = "driftloop_sidecar_request_duration_seconds_bucket"


def build() -> dict[str, Any]:
    """The serving dashboard as Grafana JSON."""
    dashboard = (
        base(
            UID,
            "Driftloop / Serving",
            "Sidecar traffic by variant, latency, and the capture "
            "pipeline: records sent, spooled on monitor outage, replayed, dropped.",
            ["serving"],
        )
        .link(dashboard_links())
        .with_variable(query_variable("model", "Model", f"label_values({REQ}, model)"))
        .with_row(row("Capture"))
        .with_panel(
            stat(
                "Capture loss",
                "Share of captured records dropped in the selected range; the "
                "prediction path never waits on the monitor, so any loss shows up here.",
                [
                    Q(
                        f"sum(increase(driftloop_records_dropped_total{{{M}}}[$__range]))"
                        f" / sum(increase(driftloop_records_captured_total{{{M}}}[$__range]))"
                        f" or 0 * sum(increase(driftloop_records_captured_total{{{M}}}[$__range]))"
                    )
                ],
                unit="percentunit",
                width=6,
                graph=False,
                thresholds=steps((None, GREEN), (0.0001, YELLOW), (0.01, RED)),
            )
        )
        .with_panel(
            stat(
                "Spool size",
                "Bytes waiting on disk for the monitor to come back.",
                [Q(f"sum(driftloop_spool_bytes{{{M}}})")],
                unit="bytes",
                width=6,
                thresholds=steps((None, GREEN), (1, YELLOW)),
            )
        )
        .with_panel(
            stat(
                "Capture queue",
                "Responses waiting in the sidecars' in-memory capture queues.",
                [Q(f"sum(driftloop_capture_queue_responses{{{M}}})")],
                width=6,
            )
        )
        .with_panel(
            stat(
                "Records sent / s",
                "Records the monitor acknowledged (replays included).",
                [Q(f"sum(rate(driftloop_records_sent_total{{{M}}}[{RI}]))")],
                unit="reqps",
                width=6,
            )
        )
        .with_panel(
            timeseries(
                "Records / s through the capture pipeline",
                "captured: rows turned into records; "
                "sent: acknowledged by the monitor; spooled: written to disk while the monitor was "
                "away; replayed: sent from the spool later.",
                [
                    Q(f"sum(rate(driftloop_records_captured_total{{{M}}}[{RI}]))", "captured"),
                    Q(f"sum(rate(driftloop_records_sent_total{{{M}}}[{RI}]))", "sent"),
                    Q(f"sum(rate(driftloop_records_spooled_total{{{M}}}[{RI}]))", "spooled"),
                    Q(f"sum(rate(driftloop_records_replayed_total{{{M}}}[{RI}]))", "replayed"),
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Dropped records / s by reason",
                "Records not recorded: no_rows (no rows found in the request), not_json, "
                "queue_full, too_large, capture_error, rejected, spool_full, shutdown.",
                [
                    Q(
                        f"sum by (reason) (rate(driftloop_records_dropped_total{{{M}}}[{RI}]))"
                        f" or 0 * sum(rate(driftloop_records_captured_total{{{M}}}[{RI}]))",
                        "{{reason}}",
                    )
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Requests recorded",
                "Share of the requests with a body that became at least one record "
                "(alert DriftloopCaptureRatioLow below 90 %); the rest are counted by reason "
                "in the panel beside.",
                [
                    Q(
                        "sum(rate(driftloop_capture_requests_total"
                        f'{{{M}, result="recorded"}}[{RI}]))'
                        f" / sum(rate(driftloop_capture_requests_total{{{M}}}[{RI}]))",
                        "recorded",
                    )
                ],
                unit="percentunit",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Spool bytes by sidecar",
                "On-disk spool of each sidecar.",
                [Q(f"driftloop_spool_bytes{{{M}}}", "{{model}} {{instance}}")],
                unit="bytes",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Shipping latency p99 by result",
                "Time of one POST of a batch to the monitor.",
                [
                    Q(
                        "histogram_quantile(0.99, sum by (result, le) (rate("
                        f"driftloop_ship_duration_seconds_bucket{{{M}}}[{RI}])))",
                        "{{result}}",
                    )
                ],
                unit="s",
                width=12,
            )
        )
        .with_row(row("Traffic"))
        .with_panel(
            timeseries(
                "Requests / s by variant",
                "Requests the sidecars answered, by the variant that answered.",
                [Q(f"sum by (model, variant) (rate({REQ}{{{M}}}[{RI}]))", "{{model}} {{variant}}")],
                unit="reqps",
                width=12,
                stack=True,
            )
        )
        .with_panel(
            timeseries(
                "Responses / s by code",
                "Status codes the sidecars returned.",
                [Q(f"sum by (code) (rate({REQ}{{{M}}}[{RI}]))", "{{code}}")],
                unit="reqps",
                width=12,
                stack=True,
            )
        )
        .with_panel(
            timeseries(
                "Latency p99 by variant",
                "Time from request to the last byte of the Bento's answer, at the sidecar.",
                [
                    Q(
                        "histogram_quantile(0.99, sum by (model,"
                        f" variant, le) (rate({LATENCY}{{{M}}}"
                        f"[{RI}])))",
                        "{{model}} {{variant}}",
                    )
                ],
                unit="s",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Latency p50 by variant",
                "Median time from request to the Bento's answer.",
                [
                    Q(
                        "histogram_quantile(0.5, sum by (model,"
                        f" variant, le) (rate({LATENCY}{{{M}}}"
                        f"[{RI}])))",
                        "{{model}} {{variant}}",
                    )
                ],
                unit="s",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Upstream errors / s by reason",
                "Bento calls that failed (connect, timeout, "
                "protocol) and were answered with 502 or 504.",
                [
                    Q(
                        "sum by (variant, reason) (rate("
                        f"driftloop_sidecar_upstream_errors_total{{{M}}}[{RI}]))"
                        f" or 0 * sum by (variant) (rate({REQ}{{{M}}}[{RI}]))",
                        "{{variant}} {{reason}}",
                    )
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Shadow copies / s by outcome",
                "Copies of requests sent to a shadow challenger.",
                [
                    Q(
                        "sum by (outcome) (rate("
                        f"driftloop_sidecar_shadow_requests_total{{{M}}}[{RI}]))",
                        "{{outcome}}",
                    )
                ],
                unit="reqps",
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Routing policy revision",
                "Revision of the monitor's routing policy each sidecar "
                "applies (0: its command-line flags).",
                [Q(f"driftloop_sidecar_policy_revision{{{M}}}", "{{model}} {{instance}}")],
                width=12,
            )
        )
        .with_panel(
            timeseries(
                "Policy polls / s by result",
                "Polls of the monitor's routing policy.",
                [
                    Q(
                        "sum by (result)"
                        f" (rate(driftloop_sidecar_policy_polls_total{{{M}}}[{RI}]))",
                        "{{result}}",
                    )
                ],
                unit="ops",
                width=12,
            )
        )
    )
    return to_dict(dashboard)
