"""The rollout package's public surface is explicit and pinned."""

from __future__ import annotations

import driftloop.monitor.rollout as rollout


def test_the_package_exports_exactly_its_public_names() -> None:
    assert sorted(rollout.__all__) == sorted(
        [
            "Action",
            "Evidence",
            "Interval",
            "Moments",
            "Outcome",
            "Reason",
            "RolloutConflictError",
            "Scenario",
            "Step",
            "current_rollout",
            "decide",
            "evaluate",
            "evaluate_rollouts",
            "install",
            "manual",
            "mixture_halfwidth",
            "paired_sequence",
            "plan",
            "policy_json",
            "read_policy",
            "simulate",
            "single_sequence",
            "srm_log_bayes_factor",
            "srm_p_value",
            "start_rollout",
            "unpaired_sequence",
            "write_policy",
        ]
    )
    for name in rollout.__all__:
        assert getattr(rollout, name).__doc__, f"{name} has no docstring"
