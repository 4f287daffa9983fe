"""The rollout rule simulated 500 times per scenario, evaluated every minute as the service does.

"No true difference" is the boundary of what a rollout tests: with margin 0, an A/A rollout must
neither promote nor roll back more often than alpha; with the default margin, a challenger exactly
the margin worse (the null of non-inferiority) must not be promoted more often than alpha. An A/A
rollout with a positive margin is *supposed* to be promoted (the challenger is non-inferior); its
rollbacks are bounded by the margin-0 case, where rolling back is easier.
"""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.monitor.rollout.decide import Action, Reason
from driftloop.monitor.rollout.simulation import Scenario, simulate
from driftloop.settings import RolloutSettings

RUNS = 500
DEFAULTS = RolloutSettings()


def test_an_aa_rollout_neither_promotes_nor_rolls_back_more_often_than_alpha() -> None:
    config = DEFAULTS.model_copy(update={"margin": 0.0})
    outcome = simulate(config, Scenario(), RUNS, seed=1)
    assert outcome.rate(Action.promote) <= config.alpha
    assert outcome.rate(Action.rollback) <= config.alpha
    assert outcome.rate(Action.promote) + outcome.rate(Action.rollback) <= config.alpha


def test_a_challenger_exactly_the_margin_worse_is_promoted_at_most_alpha_of_the_time() -> None:
    scenario = Scenario(challenger_accuracy=0.85 - DEFAULTS.margin)
    outcome = simulate(DEFAULTS, scenario, RUNS, seed=2)
    assert outcome.rate(Action.promote) <= DEFAULTS.alpha


def test_a_three_point_gain_is_promoted() -> None:
    outcome = simulate(DEFAULTS, Scenario(challenger_accuracy=0.88), RUNS, seed=3)
    assert outcome.rate(Action.promote) >= 0.95
    assert outcome.rate(Action.rollback) == 0.0
    assert 0 < outcome.median_labeled(Action.promote) < 20_000


def test_a_three_point_loss_is_rolled_back() -> None:
    outcome = simulate(DEFAULTS, Scenario(challenger_accuracy=0.82), RUNS, seed=4)
    assert outcome.rate(Action.rollback) >= 0.95
    assert outcome.rate(Action.promote) == 0.0
    assert np.all(outcome.reason[outcome.action == Action.rollback] == Reason.inferior)
    assert 0 < outcome.median_labeled(Action.rollback) < 40_000


@pytest.mark.parametrize("skew", [0.8, 1.25], ids=["challenger-starved", "challenger-flooded"])
def test_a_skewed_split_is_caught_by_the_sample_ratio_check(skew: float) -> None:
    outcome = simulate(DEFAULTS, Scenario(split_skew=skew, max_ticks=600), RUNS, seed=5)
    caught = (outcome.action == Action.rollback) & (outcome.reason == Reason.sample_ratio_mismatch)
    assert caught.mean() >= 0.95


def test_a_faithful_split_does_not_trip_the_sample_ratio_check() -> None:
    outcome = simulate(DEFAULTS, Scenario(challenger_accuracy=0.88), RUNS, seed=6)
    assert (outcome.reason == Reason.sample_ratio_mismatch).mean() <= DEFAULTS.srm_alpha * 5
