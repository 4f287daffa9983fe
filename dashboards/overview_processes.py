"""The row of the overview about Driftloop's own processes: CPU, memory, ingest, API, jobs."""

from __future__ import annotations

from driftloop.dashboards.panels import (
    Item,
    Q,
    row,
    timeseries,
)
from driftloop.dashboards.selectors import RATE as RI

COMPONENT = "* on (job, instance) group_left (component) driftloop_build_info"
"""Joins a process metric with the Driftloop component (monitor, sidecar) of its target."""


def processes() -> list[Item]:
    """CPU and memory per process, ingest batches, API latency and errors, periodic jobs."""
    return [
        row("Driftloop processes"),
        timeseries(
            "CPU by process",
            "CPU seconds per second of each Driftloop process.",
            [
                Q(
                    f"rate(process_cpu_seconds_total[{RI}]) {COMPONENT}",
                    "{{component}} {{instance}}",
                )
            ],
            unit="percentunit",
            width=8,
        ),
        timeseries(
            "Memory by process",
            "Resident memory of each Driftloop process.",
            [Q(f"process_resident_memory_bytes {COMPONENT}", "{{component}} {{instance}}")],
            unit="bytes",
            width=8,
        ),
        timeseries(
            "Ingest batches / s by result",
            "Record batches the monitor accepted or refused.",
            [Q(f"sum by (result) (rate(driftloop_ingest_batches_total[{RI}]))", "{{result}}")],
            unit="reqps",
            width=8,
            stack=True,
        ),
        timeseries(
            "Ingest batch latency p50 / p99",
            "Time the monitor took to validate and commit one record batch.",
            [
                Q(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"driftloop_ingest_batch_duration_seconds_bucket[{RI}])))",
                    "p99",
                ),
                Q(
                    "histogram_quantile(0.5, sum by (le) (rate("
                    f"driftloop_ingest_batch_duration_seconds_bucket[{RI}])))",
                    "p50",
                ),
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "Monitor API latency p99 by route",
            "HTTP latency of the monitor per route.",
            [
                Q(
                    "histogram_quantile(0.99, sum by (handler, le) (rate("
                    f"driftloop_http_request_duration_seconds_bucket[{RI}])))",
                    "{{handler}}",
                )
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "Monitor API errors / s",
            "Monitor responses with a 5xx code, per route.",
            [
                Q(
                    "sum by (handler, code)"
                    f' (rate(driftloop_http_requests_total{{code=~"5.."}}[{RI}]))'
                    f" or 0 * sum by (handler) (rate(driftloop_http_requests_total[{RI}]))",
                    "{{handler}} {{code}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        timeseries(
            "Periodic jobs: mean run time",
            "Mean run time of each periodic job (label `task`).",
            [
                Q(
                    f"sum by (task) (rate(driftloop_job_duration_seconds_sum[{RI}]))"
                    f" / sum by (task) (rate(driftloop_job_duration_seconds_count[{RI}]))",
                    "{{task}}",
                )
            ],
            unit="s",
            width=12,
        ),
        timeseries(
            "Periodic jobs: runs / s by result",
            "Runs of each periodic job, ok or error.",
            [
                Q(
                    f"sum by (task, result) (rate(driftloop_job_runs_total[{RI}]))",
                    "{{task}} {{result}}",
                )
            ],
            unit="ops",
            width=12,
            stack=True,
        ),
        timeseries(
            "Periodic jobs: time since last success",
            "Seconds since each periodic job last succeeded on the leader, beside three of its "
            "intervals: the DriftloopJobStale threshold.",
            [
                Q(
                    "time() - max by (task) (driftloop_job_last_success_timestamp_seconds)",
                    "{{task}}",
                ),
                Q("3 * max by (task) (driftloop_job_interval_seconds)", "{{task}} threshold"),
            ],
            unit="s",
            width=12,
        ),
    ]
