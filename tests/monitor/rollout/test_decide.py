"""The decision rule: order of the checks, the last step, the plan."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.errors import ValidationError
from driftloop.monitor.rollout.decide import (
    Action,
    Evidence,
    Reason,
    check_config,
    decide,
    phase_alpha,
    plan,
)
from driftloop.settings import RolloutSettings

CONFIG = RolloutSettings(min_step_samples=100, min_step_seconds=60, min_compare_samples=50)
LAST = len(plan(CONFIG)) - 1


def evidence(**overrides: object) -> Evidence:
    values: dict[str, object] = {
        "lower": -0.05,
        "upper": 0.05,
        "n_champion": 1000,
        "n_challenger": 1000,
        "step_samples": 500,
        "step_seconds": 600.0,
    }
    values.update(overrides)
    return Evidence(**values)


def test_the_default_plan_is_shadow_then_four_canary_steps() -> None:
    steps = plan(RolloutSettings())
    assert [(s.mode, s.weight) for s in steps] == [
        ("shadow", 0.0),
        ("canary", 0.05),
        ("canary", 0.25),
        ("canary", 0.5),
        ("canary", 1.0),
    ]
    # One stratified sequence spans shadow and canary: alpha is no longer halved by the shadow
    # phase (the earlier design's split is kept for the simulation's comparison only).
    assert phase_alpha(RolloutSettings()) == 0.05
    assert phase_alpha(RolloutSettings(), split=True) == 0.025
    assert phase_alpha(RolloutSettings(shadow=False), split=True) == 0.05


@pytest.mark.parametrize(
    ("step", "overrides", "action", "reason"),
    [
        (1, {}, Action.advance, Reason.step_complete),
        (1, {"step_samples": 10}, Action.hold, Reason.waiting),
        (1, {"step_seconds": 5.0}, Action.hold, Reason.waiting),
        (1, {"upper": -0.02}, Action.rollback, Reason.inferior),
        (1, {"upper": -0.02, "n_challenger": 10, "step_samples": 10}, Action.hold, Reason.waiting),
        (1, {"error_lower": 0.02}, Action.rollback, Reason.error_rate),
        (1, {"latency_lower": 0.02}, Action.rollback, Reason.latency),
        (1, {"srm_log_e": np.log(1000.0) + 0.1}, Action.rollback, Reason.sample_ratio_mismatch),
        (LAST - 1, {}, Action.hold, Reason.waiting),
        (LAST - 1, {"lower": -0.005}, Action.advance, Reason.step_complete),
        (LAST, {}, Action.hold, Reason.waiting),
        (LAST, {"lower": -0.005}, Action.promote, Reason.non_inferior),
        (LAST, {"lower": -0.005, "error_lower": 0.5}, Action.rollback, Reason.error_rate),
    ],
    ids=[
        "step-complete",
        "too-few-samples",
        "too-short",
        "inferior",
        "inferior-needs-samples",
        "error-guardrail",
        "latency-guardrail",
        "srm",
        "all-traffic-needs-non-inferiority",
        "non-inferior-enters-last-step",
        "last-step-waits",
        "promote",
        "guardrail-beats-promotion",
    ],
)
def test_one_evaluation(
    step: int, overrides: dict[str, object], action: Action, reason: Reason
) -> None:
    got_action, got_reason = decide(CONFIG, step, LAST, evidence(**overrides))
    assert (Action(int(got_action)), Reason(int(got_reason))) == (action, reason)


def test_decide_works_on_arrays_of_rollouts() -> None:
    actions, _ = decide(
        CONFIG,
        np.array([1, LAST, 1]),
        LAST,
        evidence(lower=np.array([-0.05, -0.001, -0.05]), upper=np.array([0.05, 0.05, -0.03])),
    )
    assert list(actions) == [Action.advance, Action.promote, Action.rollback]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"steps": [0.5, 0.25, 1.0]}, "must increase"),
        ({"steps": [0.1, 0.5]}, "last rollout step must be 1.0"),
        ({"steps": [0.0, 1.0]}, "within"),
        ({"split": "ab"}, "sticky_key"),
    ],
    ids=["decreasing", "not-all-traffic", "zero", "ab-without-key"],
)
def test_plans_the_state_machine_cannot_walk_are_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        check_config(RolloutSettings.model_validate(overrides))
