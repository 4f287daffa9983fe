"""Vectorised simulation of many rollouts, evaluated every tick exactly as the service does.

Each run is one rollout of a classifier: the champion and the challenger have fixed accuracies,
requests arrive every tick (one evaluation interval), a share of them gets labeled, and the split
between the models follows the routing policy (or a skewed one, to exercise the SRM check). At
every tick each active run is evaluated with :func:`driftloop.monitor.rollout.decide.decide` on
its confidence sequence and SRM e-value, and advances, promotes or rolls back. NumPy carries all
runs at once, so 500 rollouts of a few thousand ticks take seconds.

Used by ``bench/rollout_simulation.py`` and by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftloop.monitor.rollout.decide import Action, Evidence, decide, phase_alpha, plan
from driftloop.monitor.rollout.sequences import (
    Interval,
    Moments,
    paired_sequence,
    unpaired_sequence,
)
from driftloop.monitor.rollout.srm import srm_log_bayes_factor
from driftloop.settings import RolloutSettings

__all__ = ["Outcome", "Scenario", "simulate"]


@dataclass(frozen=True)
class Scenario:
    """The world one batch of simulated rollouts lives in."""

    champion_accuracy: float = 0.85
    challenger_accuracy: float = 0.85
    requests_per_tick: int = 200
    label_rate: float = 0.5
    split_skew: float = 1.0
    agreement: float = 0.7
    tick_seconds: float = 60.0
    max_ticks: int = 1500


@dataclass
class Outcome:
    """Per-run results: the final action, when, and the labeled rows it took."""

    action: NDArray[np.int8]
    ticks: NDArray[np.int64]
    labeled: NDArray[np.int64]
    final_step: NDArray[np.int64]
    reason: NDArray[np.int8]
    summary: dict[str, float] = field(default_factory=dict)

    def rate(self, action: Action) -> float:
        """Share of runs that ended in ``action``."""
        return float(np.mean(self.action == action))

    def median_labeled(self, action: Action) -> float:
        """Median labeled rows (both arms) consumed by the runs that ended in ``action``."""
        hit = self.action == action
        return float(np.median(self.labeled[hit])) if hit.any() else float("nan")


def _pair_probabilities(p_a: float, p_b: float, agreement: float) -> NDArray[np.float64]:
    """Joint correctness of two models on one request: (both, only champion, only challenger,
    neither); ``agreement`` moves the joint from independent (0) to maximal overlap (1)."""
    p11 = p_a * p_b + agreement * (min(p_a, p_b) - p_a * p_b)
    return np.array([p11, p_a - p11, p_b - p11, 1.0 - p_a - p_b + p11])


def _fixed(interval: Interval, alpha: float) -> tuple[Any, Any]:
    """The fixed-sample interval of the same estimate: what a static threshold re-checked every
    interval uses (the peer the benchmark compares with)."""
    half = NormalDist().inv_cdf(1 - alpha / 2) * np.sqrt(interval.variance)
    known = np.isfinite(half) & np.isfinite(interval.estimate)
    lower = np.where(known, interval.estimate - np.where(known, half, 0), -np.inf)
    upper = np.where(known, interval.estimate + np.where(known, half, 0), np.inf)
    return lower, upper


def simulate(
    config: RolloutSettings,
    scenario: Scenario,
    runs: int,
    seed: int = 0,
    *,
    boundary: str = "mixture",
) -> Outcome:
    """Simulate ``runs`` rollouts under ``scenario`` and return how each ended.

    ``boundary="fixed"`` swaps the confidence sequence for the fixed-sample interval, to show what
    checking a static threshold every minute does to the error rates.
    """
    if boundary not in ("mixture", "fixed"):
        raise ValueError(f"boundary must be mixture or fixed, got {boundary!r}")
    rng = np.random.default_rng(seed)
    steps = plan(config)
    last = len(steps) - 1
    alpha = phase_alpha(config)
    weights = np.array([s.weight for s in steps])
    paired_step = np.array([s.paired for s in steps])
    n_req, p_a, p_b = (
        scenario.requests_per_tick,
        scenario.champion_accuracy,
        scenario.challenger_accuracy,
    )
    joint = _pair_probabilities(p_a, p_b, scenario.agreement)

    step = np.zeros(runs, dtype=np.int64)
    step_start = np.zeros(runs, dtype=np.int64)
    step_samples = np.zeros(runs)
    active = np.ones(runs, dtype=bool)
    pair_n, pair_sum, pair_sq = np.zeros(runs), np.zeros(runs), np.zeros(runs)
    arm_n, arm_k = np.zeros((2, runs)), np.zeros((2, runs))
    split = np.zeros((2, runs))
    srm_done = np.zeros(runs)
    run_lower, run_upper = np.full(runs, -np.inf), np.full(runs, np.inf)
    out_action = np.zeros(runs, dtype=np.int8)
    out_reason = np.zeros(runs, dtype=np.int8)
    out_ticks = np.full(runs, scenario.max_ticks, dtype=np.int64)
    labeled = np.zeros(runs, dtype=np.int64)

    for tick in range(scenario.max_ticks):
        if not active.any():
            break
        shadow = active & paired_step[step]
        canary = active & ~paired_step[step]
        n_lab = rng.binomial(n_req, scenario.label_rate, runs)
        if shadow.any():
            cells = rng.multinomial(n_lab, joint)  # (runs, 4)
            diff = cells[:, 2] - cells[:, 1]
            disagree = cells[:, 1] + cells[:, 2]
            pair_n += np.where(shadow, n_lab, 0)
            pair_sum += np.where(shadow, diff, 0)
            pair_sq += np.where(shadow, disagree, 0)
            step_samples += np.where(shadow, n_lab, 0)
            labeled += np.where(shadow, n_lab, 0)
        if canary.any():
            share = np.clip(weights[step] * scenario.split_skew, 0.0, 1.0)
            to_b = rng.binomial(n_req, share)
            counts = np.stack([n_req - to_b, to_b])
            lab = rng.binomial(counts, scenario.label_rate)
            correct = rng.binomial(lab, np.array([[p_a], [p_b]]))
            mask = canary[None, :]
            split += np.where(mask, counts, 0)
            arm_n += np.where(mask, lab, 0)
            arm_k += np.where(mask, correct, 0)
            step_samples += np.where(canary, lab[1], 0)
            labeled += np.where(canary, lab.sum(axis=0), 0)

        mean_d = np.divide(pair_sum, pair_n, out=np.zeros(runs), where=pair_n > 0)
        paired = paired_sequence(
            Moments(pair_n, mean_d, pair_sq - pair_n * mean_d**2),
            alpha=alpha,
            tuning_samples=config.tuning_samples,
            max_variance=1.0,
            min_samples=config.min_compare_samples,
        )
        p_hat = np.divide(arm_k, arm_n, out=np.zeros_like(arm_k), where=arm_n > 0)
        moments = [
            Moments(arm_n[i], p_hat[i], arm_n[i] * p_hat[i] * (1 - p_hat[i])) for i in (0, 1)
        ]
        unpaired = unpaired_sequence(
            *moments,
            alpha=alpha,
            tuning_samples=config.tuning_samples,
            max_variance=0.25,
            min_samples=config.min_compare_samples,
        )
        w = weights[step]
        srm_now = np.where(canary, _srm_per_run(split, w, config.srm_concentration), 0.0)
        use_pair = paired_step[step]
        (p_lo, p_hi), (u_lo, u_hi) = (
            ((paired.lower, paired.upper), (unpaired.lower, unpaired.upper))
            if boundary == "mixture"
            else (_fixed(paired, alpha), _fixed(unpaired, alpha))
        )
        run_lower = np.maximum(run_lower, np.where(use_pair, p_lo, u_lo))
        run_upper = np.minimum(run_upper, np.where(use_pair, p_hi, u_hi))
        evidence = Evidence(
            lower=run_lower,
            upper=run_upper,
            n_champion=pair_n + arm_n[0],
            n_challenger=pair_n + arm_n[1],
            step_samples=step_samples,
            step_seconds=(tick - step_start + 1) * scenario.tick_seconds,
            srm_log_e=srm_done + srm_now,
        )
        action, reason = decide(config, step, last, evidence)
        action = np.where(active, action, Action.hold)
        ended = (action == Action.promote) | (action == Action.rollback)
        out_action[ended] = action[ended]
        out_reason[ended] = reason[ended]
        out_ticks[ended] = tick + 1
        active &= ~ended
        moved = action == Action.advance
        srm_done = np.where(moved, srm_done + srm_now, srm_done)
        step = np.where(moved, step + 1, step)
        step_start = np.where(moved, tick + 1, step_start)
        step_samples = np.where(moved, 0, step_samples)
        split[:, moved] = 0
    return Outcome(out_action, out_ticks, labeled, step, out_reason)


def _srm_per_run(
    split: NDArray[np.float64], w: NDArray[np.float64], k: float
) -> NDArray[np.float64]:
    out = np.zeros(w.shape)
    for value in np.unique(w):
        if 0.0 < value < 1.0:
            hit = w == value
            out[hit] = srm_log_bayes_factor(split[0, hit], split[1, hit], float(value), k)
    return out
