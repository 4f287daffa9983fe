"""The rollout rule under production conditions, simulated (seeded) as the service evaluates it.

Each case runs a few hundred rollouts evaluated every minute for up to 12 hours. "Wrong" is a
promotion of a challenger that is not non-inferior or a rollback of one that is: it must stay
within alpha plus three simulation standard errors. The earlier design (canary rows pooled
across steps) is run on the same worlds to show these tests can fail.
"""

from __future__ import annotations

import math

import pytest

from driftloop.monitor.rollout.decide import Action
from driftloop.monitor.rollout.simulation import (
    Scenario,
    simulate,
    simulate_latency,
    simulate_sticky,
)
from driftloop.settings import RolloutSettings

RUNS = 300
CONTRAST_RUNS = 100
HOURS_12 = 720
DEFAULTS = RolloutSettings()
ZERO_MARGIN = DEFAULTS.model_copy(update={"margin": 0.0})
BOUND = DEFAULTS.alpha + 3 * math.sqrt(DEFAULTS.alpha * (1 - DEFAULTS.alpha) / RUNS)

FALLING = Scenario(
    champion_accuracy=0.90, challenger_accuracy=0.90, trend_per_hour=-0.05, max_ticks=HOURS_12
)
RISING_WORSE = Scenario(
    champion_accuracy=0.80, challenger_accuracy=0.79, trend_per_hour=0.05, max_ticks=HOURS_12
)
DAILY = Scenario(cycle_amplitude=0.05, max_ticks=HOURS_12)
COMPLAINTS_FIRST = Scenario(error_label_minutes=3, correct_label_minutes=60, max_ticks=HOURS_12)
HORIZON = ZERO_MARGIN.model_copy(update={"label_horizon_seconds": 3 * 3600.0})

pytestmark = pytest.mark.slow


def test_both_models_drifting_down_does_not_decide_an_aa_rollout() -> None:
    outcome = simulate(ZERO_MARGIN, FALLING, RUNS, seed=21)
    assert outcome.rate(Action.promote) + outcome.rate(Action.rollback) <= BOUND


def test_the_pooled_design_was_confounded_by_the_same_drift() -> None:
    outcome = simulate(ZERO_MARGIN, FALLING, CONTRAST_RUNS, seed=21, design="pooled")
    assert outcome.rate(Action.rollback) >= 0.5


def test_both_models_drifting_up_does_not_promote_a_challenger_one_margin_worse() -> None:
    outcome = simulate(DEFAULTS, RISING_WORSE, RUNS, seed=22)
    assert outcome.rate(Action.promote) <= BOUND
    pooled = simulate(DEFAULTS, RISING_WORSE, CONTRAST_RUNS, seed=22, design="pooled")
    assert pooled.rate(Action.promote) >= 0.5


def test_a_daily_cycle_does_not_decide_an_aa_rollout() -> None:
    outcome = simulate(ZERO_MARGIN, DAILY, RUNS, seed=23)
    assert outcome.rate(Action.promote) + outcome.rate(Action.rollback) <= BOUND


def test_labels_that_come_first_for_errors_do_not_decide_an_aa_rollout() -> None:
    outcome = simulate(HORIZON, COMPLAINTS_FIRST, RUNS, seed=24)
    assert outcome.rate(Action.promote) + outcome.rate(Action.rollback) <= BOUND
    # Without the horizon the shadow pairs' labels favour the challenger (the champion's
    # errors, which users complain about, come in first).
    blind = simulate(ZERO_MARGIN, COMPLAINTS_FIRST, CONTRAST_RUNS, seed=24)
    assert blind.rate(Action.promote) >= 0.5


@pytest.mark.parametrize(
    ("scenario", "action"),
    [
        (Scenario(challenger_accuracy=0.87), Action.promote),
        (Scenario(challenger_accuracy=0.83), Action.rollback),
        (Scenario(challenger_accuracy=0.87, trend_per_hour=-0.05), Action.promote),
        (Scenario(challenger_accuracy=0.83, cycle_amplitude=0.05), Action.rollback),
    ],
    ids=["plus-2", "minus-2", "plus-2-drifting", "minus-2-daily-cycle"],
)
def test_two_points_either_way_are_still_decided(scenario: Scenario, action: Action) -> None:
    outcome = simulate(DEFAULTS, scenario, RUNS, seed=25)
    assert outcome.rate(action) >= 0.9


def test_two_points_better_is_promoted_with_late_labels_and_a_horizon() -> None:
    config = DEFAULTS.model_copy(update={"label_horizon_seconds": 3 * 3600.0})
    scenario = Scenario(challenger_accuracy=0.87, error_label_minutes=3, correct_label_minutes=60)
    outcome = simulate(config, scenario, RUNS, seed=26)
    assert outcome.rate(Action.promote) >= 0.9


LATENCY_RUNS = 100
LATENCY_BOUND = DEFAULTS.alpha + 3 * math.sqrt(DEFAULTS.alpha * (1 - DEFAULTS.alpha) / LATENCY_RUNS)


@pytest.mark.parametrize("mode", ["shadow", "canary", "ab"])
def test_identical_heavy_tailed_latency_is_not_rolled_back(mode: str) -> None:
    rate = simulate_latency(DEFAULTS, mode, LATENCY_RUNS, seed=27, ticks=30, requests_per_tick=100)
    assert rate <= LATENCY_BOUND


@pytest.mark.parametrize("mode", ["canary", "ab"])
def test_a_challenger_twice_as_slow_is_rolled_back_where_users_meet_it(mode: str) -> None:
    rate = simulate_latency(
        DEFAULTS, mode, LATENCY_RUNS, seed=28, ticks=30, requests_per_tick=100, slowdown=2.0
    )
    assert rate >= 0.9


def test_shadow_latency_is_reported_but_never_decides() -> None:
    rate = simulate_latency(
        DEFAULTS, "shadow", 20, seed=29, ticks=10, requests_per_tick=100, slowdown=3.0
    )
    assert rate == 0.0
    earlier = simulate_latency(
        DEFAULTS, "shadow", 20, seed=29, ticks=10, requests_per_tick=100, slowdown=3.0,
        rule="exact_p99",
    )  # fmt: skip
    assert earlier == 1.0


def test_sticky_users_of_uneven_activity_neither_trip_the_split_nor_decide_an_aa_test() -> None:
    # The rule the service runs when the sticky key is a logged input (tests/.../test_sticky.py).
    outcome = simulate_sticky(DEFAULTS, 60, seed=30, users=2000, sigma=1.5, ticks=120)
    bound = DEFAULTS.alpha + 3 * math.sqrt(DEFAULTS.alpha * (1 - DEFAULTS.alpha) / 60)
    assert outcome.srm_by_unit <= bound
    assert outcome.decided_by_unit <= bound
    # Counting requests, as before, fires the split check on most A/A runs.
    assert outcome.srm_by_request >= 0.5
