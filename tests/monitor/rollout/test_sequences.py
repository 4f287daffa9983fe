"""Confidence sequences: the closed form, time-uniform coverage, changing allocation."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.monitor.rollout.sequences import (
    Moments,
    mixture_halfwidth,
    mixture_tau2,
    paired_sequence,
    unpaired_sequence,
)


def test_the_boundary_is_the_asymptotic_cs_of_waudby_smith_et_al() -> None:
    # Theorem 2.2: sigma * sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha)).
    sigma, alpha, rho = 0.4, 0.05, 0.03
    t = np.array([10.0, 100.0, 1000.0, 1e5])
    expected = sigma * np.sqrt(
        2 * (t * rho**2 + 1) / (t**2 * rho**2) * np.log(np.sqrt(t * rho**2 + 1) / alpha)
    )
    got = mixture_halfwidth(sigma**2 / t, sigma**2 * rho**2, alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_the_tuned_boundary_is_tightest_near_the_target_sample_size() -> None:
    sigma2, alpha, target = 0.25, 0.05, 2000
    tau2 = mixture_tau2(sigma2 / target, alpha)
    # Normalised by the fixed-n standard error, the width is smallest around the target.
    n = np.array([200, 2000, 20000])
    normalised = mixture_halfwidth(sigma2 / n, tau2, alpha) / np.sqrt(sigma2 / n)
    assert normalised[1] < normalised[0]
    assert normalised[1] < normalised[2]


def test_no_interval_before_the_minimum_and_none_of_zero_width_for_identical_outcomes() -> None:
    few = paired_sequence(Moments.of(np.ones(5)), alpha=0.05, tuning_samples=100, min_samples=10)
    assert few.lower == -np.inf
    assert few.upper == np.inf
    same = paired_sequence(
        Moments.of(np.zeros(50)), alpha=0.05, tuning_samples=100, max_variance=1.0
    )
    assert same.lower < 0 < same.upper


def test_swapping_the_arms_mirrors_the_interval() -> None:
    rng = np.random.default_rng(3)
    a, b = Moments.of(rng.normal(0, 1, 300)), Moments.of(rng.normal(0.2, 2, 500))
    ab = unpaired_sequence(a, b, alpha=0.05, tuning_samples=500)
    ba = unpaired_sequence(b, a, alpha=0.05, tuning_samples=500)
    assert float(ab.lower) == pytest.approx(-float(ba.upper))
    assert float(ab.estimate) == pytest.approx(-float(ba.estimate))


def test_alpha_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha must be within"):
        mixture_halfwidth(1.0, 1.0, 1.5)


def _running_moments(x: np.ndarray) -> Moments:
    """Moments of every prefix of each row of ``x``."""
    n = np.arange(1, x.shape[1] + 1)
    s, sq = np.cumsum(x, axis=1), np.cumsum(x**2, axis=1)
    mean = s / n
    return Moments(n, mean, sq - n * mean**2)


def test_paired_coverage_holds_at_every_sample_size_at_once() -> None:
    rng = np.random.default_rng(11)
    runs, horizon, alpha = 300, 3000, 0.05
    # Differences of correctness of two equally good correlated classifiers: -1, 0, +1.
    d = rng.choice([-1.0, 0.0, 1.0], size=(runs, horizon), p=[0.06, 0.88, 0.06])
    cs = paired_sequence(
        _running_moments(d), alpha=alpha, tuning_samples=1000, max_variance=1.0, min_samples=50
    )
    ever_missed = ((cs.lower > 0) | (cs.upper < 0)).any(axis=1)
    assert ever_missed.mean() <= alpha


def test_unpaired_coverage_holds_when_the_split_changes_between_steps() -> None:
    rng = np.random.default_rng(5)
    runs, alpha = 500, 0.05
    # Challenger share 5 %, then 25 %, then 50 %, as the canary steps do.
    shares = np.concatenate([np.full(1500, 0.05), np.full(1500, 0.25), np.full(3000, 0.5)])
    to_b = rng.random((runs, shares.size)) < shares
    correct = (rng.random((runs, shares.size)) < 0.8).astype(float)
    n_b, n_a = np.cumsum(to_b, axis=1), np.cumsum(~to_b, axis=1)
    k_b, k_a = np.cumsum(correct * to_b, axis=1), np.cumsum(correct * ~to_b, axis=1)

    def bern(n: np.ndarray, k: np.ndarray) -> Moments:
        p = np.divide(k, n, out=np.zeros_like(k), where=n > 0)
        return Moments(n, p, n * p * (1 - p))

    cs = unpaired_sequence(
        bern(n_a, k_a),
        bern(n_b, k_b),
        alpha=alpha,
        tuning_samples=1000,
        max_variance=0.25,
        min_samples=100,
    )
    ever_missed = ((cs.lower > 0) | (cs.upper < 0)).any(axis=1)
    assert ever_missed.mean() <= alpha
    final = cs.upper[:, -1] - cs.lower[:, -1]
    assert np.all(final < 0.2)  # and it does narrow


def test_a_true_difference_is_eventually_excluded_from_zero() -> None:
    rng = np.random.default_rng(8)
    d = rng.choice([-1.0, 0.0, 1.0], size=(50, 4000), p=[0.04, 0.86, 0.10])
    cs = paired_sequence(_running_moments(d), alpha=0.05, tuning_samples=1000, max_variance=1.0)
    assert (cs.lower[:, -1] > 0).mean() > 0.9
