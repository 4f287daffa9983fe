"""The champion vs challenger row of the model dashboard: the rollout and its evidence."""

from __future__ import annotations

from driftloop.dashboards.panels import (
    GREEN,
    RED,
    Item,
    Q,
    row,
    state_timeline,
    steps,
    table,
    timeseries,
    value_names,
)
from driftloop.dashboards.selectors import ONE_MODEL as M


def rollout() -> list[Item]:
    """The champion vs challenger row: state, weight, confidence sequence, guardrails, decisions."""
    return [
        row("Champion vs challenger"),
        state_timeline(
            "Rollout state",
            "State of the newest rollout of the model.",
            [Q(f"max by (state) (driftloop_rollout_state{{{M}}}) == 1", "{{state}}")],
            mappings=value_names({1: ("in state", "blue")}),
            width=12,
            height=5,
        ),
        timeseries(
            "Challenger share of traffic",
            "Weight the routing policy gives the challenger at the rollout's current step.",
            [
                Q(f"max(driftloop_rollout_weight_ratio{{{M}}})", "challenger weight"),
                Q(f"max(driftloop_rollout_step{{{M}}})", "step"),
            ],
            unit="percentunit",
            width=12,
            height=5,
            min_value=0,
        ),
        timeseries(
            "Challenger minus champion with confidence sequence",
            "Difference in the primary metric (positive: challenger better) with the bounds of "
            "the always-valid confidence sequence; promotion when the lower bound clears the "
            "non-inferiority margin, roll-back when the upper bound falls under it.",
            [Q(f"max by (bound) (driftloop_rollout_difference{{{M}}})", "{{bound}}")],
            width=12,
            bounds=True,
        ),
        timeseries(
            "Labeled rows per arm",
            "Labeled rows behind the comparison.",
            [Q(f"max by (variant) (driftloop_rollout_labeled_samples{{{M}}})", "{{variant}}")],
            width=12,
        ),
        timeseries(
            "Guardrails: error ratio per arm",
            "Share of 5xx answers in the current phase.",
            [Q(f"max by (variant) (driftloop_rollout_error_ratio{{{M}}})", "{{variant}}")],
            unit="percentunit",
            width=8,
            min_value=0,
        ),
        timeseries(
            "Guardrails: p99 latency per arm",
            "p99 latency in the current phase.",
            [
                Q(
                    f"max by (variant) (driftloop_rollout_latency_p99_seconds{{{M}}})",
                    "{{variant}}",
                )
            ],
            unit="s",
            width=8,
        ),
        timeseries(
            "Sample ratio p-value",
            "Anytime-valid p-value of the split against the weight; "
            "a broken split (SRM) makes the comparison unreliable.",
            [Q(f"max(driftloop_rollout_srm_p_value{{{M}}})", "p-value")],
            width=8,
            min_value=0,
            max_value=1,
            thresholds=steps((None, RED), (0.001, GREEN)),
        ),
        table(
            "Checks",
            "1 while a check passes: error_rate, latency, sample_ratio.",
            [Q(f"max by (check) (driftloop_rollout_check_ok{{{M}}})")],
            rename={"Value": "passing"},
            width=8,
            height=6,
            thresholds=steps((None, RED), (1, GREEN)),
        ),
        table(
            "Decision history",
            "Decisions taken by the model's rollouts, by kind (all time).",
            [Q(f"sum by (decision) (driftloop_rollout_decisions_total{{{M}}})")],
            rename={"Value": "decisions"},
            width=16,
            height=6,
        ),
    ]
