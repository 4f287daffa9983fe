"""The stratified comparison, the latency quantile bound and the typed progress (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.monitor.rollout.checks import latency_check, quantile_upper
from driftloop.monitor.rollout.sequences import Moments, unpaired_sequence
from driftloop.monitor.rollout.state import Progress
from driftloop.monitor.rollout.strata import stratified_sequence


def _bernoulli(n: float, p: float) -> tuple[float, float, float]:
    return n, p, n * p * (1 - p)


def test_strata_undo_simpsons_paradox_that_pooling_falls_into() -> None:
    # Both models are 0.90 accurate early and 0.80 late; the challenger gets 5 % of early traffic
    # and 50 % of late traffic. Pooled, it looks worse; within each period it is the same.
    early_a, early_b = _bernoulli(9500, 0.9), _bernoulli(500, 0.9)
    late_a, late_b = _bernoulli(5000, 0.8), _bernoulli(5000, 0.8)
    a = Moments(*(np.array(pair) for pair in zip(early_a, late_a, strict=True)))
    b = Moments(*(np.array(pair) for pair in zip(early_b, late_b, strict=True)))
    stratified = stratified_sequence(
        a, b, alpha=0.05, tuning_samples=2000, max_variance=0.25, min_samples=100
    )
    assert float(stratified.interval.estimate) == pytest.approx(0.0, abs=1e-12)
    assert float(stratified.interval.lower) < 0 < float(stratified.interval.upper)

    pooled_a = Moments(14500, (9500 * 0.9 + 5000 * 0.8) / 14500, 0.0)
    pooled_b = Moments(5500, (500 * 0.9 + 5000 * 0.8) / 5500, 0.0)
    pooled = unpaired_sequence(
        Moments(pooled_a.n, pooled_a.mean, pooled_a.n * pooled_a.mean * (1 - pooled_a.mean)),
        Moments(pooled_b.n, pooled_b.mean, pooled_b.n * pooled_b.mean * (1 - pooled_b.mean)),
        alpha=0.05,
        tuning_samples=2000,
        max_variance=0.25,
        min_samples=100,
    )
    assert float(pooled.upper) < 0, "pooled, the A/A challenger is 'shown worse'"


def test_the_shadow_pairs_and_the_canary_strata_make_one_estimate() -> None:
    a = Moments(np.array([400.0]), np.array([0.80]), np.array([400 * 0.16]))
    b = Moments(np.array([400.0]), np.array([0.84]), np.array([400 * 0.84 * 0.16]))
    pairs = Moments.of(np.r_[np.ones(60), -np.ones(20), np.zeros(320)])  # +0.1 on 400 pairs
    both = stratified_sequence(a, b, pairs, alpha=0.05, tuning_samples=500, max_variance=0.25)
    alone = stratified_sequence(a, b, alpha=0.05, tuning_samples=500, max_variance=0.25)
    assert 0.04 < float(both.interval.estimate) < 0.1
    assert int(both.n_champion) == 800
    assert float(both.interval.variance) < float(alone.interval.variance)


def test_a_stratum_with_a_single_row_on_one_arm_is_left_out_and_counted() -> None:
    a = Moments(np.array([300.0, 5.0]), np.array([0.8, 1.0]), np.array([48.0, 0.0]))
    b = Moments(np.array([300.0, 1.0]), np.array([0.8, 0.0]), np.array([48.0, 0.0]))
    result = stratified_sequence(a, b, alpha=0.05, tuning_samples=500, max_variance=0.25)
    assert int(result.unused) == 6
    assert float(result.interval.estimate) == pytest.approx(0.0)


def test_the_quantile_bound_covers_the_true_p95_at_every_look() -> None:
    rng = np.random.default_rng(5)
    true_p95 = float(np.exp(1.6448536269514722))  # lognormal(0, 1)
    misses = 0
    for _ in range(200):
        x = np.exp(rng.normal(size=3000))
        looks = [quantile_upper(x[:n], 0.95, alpha=0.05, tuning_samples=2000) for n in
                 range(200, 3001, 200)]  # fmt: skip
        misses += any(bound < true_p95 for bound in looks)
    assert misses / 200 <= 0.05


def test_latency_waits_for_rows_beyond_the_quantile_before_it_decides() -> None:
    slow = np.full(30, 1000.0)
    fast = np.full(30, 10.0)
    few = latency_check(
        fast, slow, alpha=0.05, tolerance=0.25, min_tail_rows=20, tuning_samples=2000
    )
    assert (few.ok, few.quantile) == (True, None)
    assert "waiting" in few.note
    rng = np.random.default_rng(6)
    a, b = np.exp(rng.normal(3, 0.5, 500)), 3 * np.exp(rng.normal(3, 0.5, 500))
    canary = latency_check(a, b, alpha=0.05, tolerance=0.25, min_tail_rows=20, tuning_samples=2000)
    assert (canary.quantile, canary.ok) == (0.95, False)
    shadow = latency_check(
        a, b, alpha=0.05, tolerance=0.25, min_tail_rows=20, tuning_samples=2000, decisive=False
    )
    assert (shadow.ok, shadow.decisive) == (True, False)
    assert shadow.exceedance == canary.exceedance


def test_progress_is_frozen_and_reads_what_earlier_versions_stored() -> None:
    stored = {"lower": -0.02, "upper": None, "earlier_samples": 350, "srm_log_e_step": 1.5}
    progress = Progress.from_json(stored)
    assert progress == Progress(lower=-0.02, srm_log_e_step=1.5)
    with pytest.raises(AttributeError):
        progress.lower = 0.0  # type: ignore[misc]
    done = progress.update(srm_log_e_done=0.5).step_done()
    assert (done.srm_log_e_done, done.srm_log_e_step) == (2.0, 0.0)
    assert Progress.from_json(done.as_json()) == done
