"""One always-valid comparison over the whole rollout, stratified by step and time bucket.

Canary steps send a different share of traffic to the challenger at different times, and the
metric moves over time (drift is why there is a challenger). Pooling the canary's rows across
steps compares a challenger seen mostly *late* with a champion seen mostly *early*: a comparison
confounded by time (Simpson's paradox). Here rows are compared only within a *stratum* (one
step and one ``stratum_seconds`` bucket, where the split is constant), and the strata are
combined with precision weights:

    D = sum_s w_s d_s / sum_s w_s,   V = 1 / sum_s w_s,   w_s = 1 / V_s

with ``d_s`` the stratum's difference in means (challenger minus champion) and ``V_s`` its
variance. The shadow step is one more stratum whose ``d`` is the mean of per-request paired
differences. The *estimand* is the precision-weighted average over strata of the within-stratum
difference: when the challenger is at least ``margin`` worse in every stratum, so is ``D``
(whatever the drift), and a constant effect is estimated without bias. One sequence spans the
shadow and canary phases at the full ``alpha`` (no budget is split between phases).

Each arm's variance in a stratum is floored at the pooled within-arm variance of all unpaired
rows, so a small stratum that saw few errors by chance does not get an outsized weight. Strata
where an arm has fewer than two rows carry no information and are left out (their rows are
reported as ``unused``).

Every input may carry leading axes (one entry per simulated rollout); the strata are the last
axis of ``a`` and ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.monitor.rollout.sequences import Interval, Moments, mixture_halfwidth, mixture_tau2

__all__ = ["Stratified", "stratified_sequence"]


@dataclass(frozen=True)
class Stratified:
    """The combined interval, and how many rows of each arm it used (and left out)."""

    interval: Interval
    n_champion: Any
    n_challenger: Any
    unused: Any
    strata: Any


def _arm_variance(m: Moments, max_variance: float | None) -> Any:
    n = np.asarray(m.n, dtype=float)
    m2 = np.asarray(m.m2, dtype=float)
    if max_variance is None:
        return np.where(n > 1, m2 / np.maximum(n - 1, 1), np.inf)
    return (m2 + max_variance) / np.maximum(n, 1)


def stratified_sequence(
    a: Moments,
    b: Moments,
    pairs: Moments | None = None,
    *,
    alpha: float,
    tuning_samples: int,
    max_variance: float | None = None,
    paired_max_variance: float | None = None,
    min_samples: int = 2,
) -> Stratified:
    """Confidence sequence for the stratified difference ``b - a`` (see the module docstring).

    ``a``/``b``: the champion's and challenger's moments per unpaired stratum (last axis);
    ``pairs``: the moments of the paired differences (shadow), one per run.
    """
    n_a, n_b = np.asarray(a.n, dtype=float), np.asarray(b.n, dtype=float)
    m2_a, m2_b = np.asarray(a.m2, dtype=float), np.asarray(b.m2, dtype=float)
    total_a, total_b = n_a.sum(axis=-1), n_b.sum(axis=-1)
    pooled_n = total_a + total_b
    if max_variance is None:
        pooled = (m2_a.sum(axis=-1) + m2_b.sum(axis=-1)) / np.maximum(pooled_n - 2, 1)
        pooled = np.where(pooled_n > 2, pooled, np.inf)
    else:
        pooled = (m2_a.sum(axis=-1) + m2_b.sum(axis=-1) + max_variance) / np.maximum(pooled_n, 1)
    floor = pooled[..., None]
    var_a = np.maximum(_arm_variance(a, max_variance), floor)
    var_b = np.maximum(_arm_variance(b, max_variance), floor)
    used = (n_a >= 2) & (n_b >= 2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v_s = np.where(used, var_a / np.maximum(n_a, 1) + var_b / np.maximum(n_b, 1), np.inf)
        w_s = np.where(used & np.isfinite(v_s) & (v_s > 0), 1.0 / v_s, 0.0)
        d_s = np.where(used, np.asarray(b.mean, dtype=float) - np.asarray(a.mean, dtype=float), 0.0)
    weight = w_s.sum(axis=-1)
    weighted = (w_s * d_s).sum(axis=-1)
    n_champion = np.where(used, n_a, 0).sum(axis=-1)
    n_challenger = np.where(used, n_b, 0).sum(axis=-1)
    unused = total_a + total_b - n_champion - n_challenger
    target = 2.0 * np.where(np.isfinite(pooled), pooled, 0.0)
    if pairs is not None:
        n_p = np.asarray(pairs.n, dtype=float)
        var_p = _arm_variance(pairs, paired_max_variance)
        with np.errstate(divide="ignore", invalid="ignore"):
            v_p = np.where(n_p >= 2, var_p / np.maximum(n_p, 1), np.inf)
            w_p = np.where(np.isfinite(v_p) & (v_p > 0), 1.0 / v_p, 0.0)
        weight = weight + w_p
        weighted = weighted + w_p * np.where(n_p >= 2, np.asarray(pairs.mean, dtype=float), 0.0)
        paired_used = np.where(w_p > 0, n_p, 0)
        n_champion = n_champion + paired_used
        n_challenger = n_challenger + paired_used
        target = np.where(target > 0, target, np.where(np.isfinite(var_p), var_p, 0.0))
    ok = (n_champion >= max(min_samples, 2)) & (n_challenger >= max(min_samples, 2)) & (weight > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(ok, weighted / np.where(weight > 0, weight, 1.0), np.nan)
        variance = np.where(ok, 1.0 / np.where(weight > 0, weight, 1.0), np.inf)
    tau2 = mixture_tau2(np.maximum(target, 1e-12) / tuning_samples, alpha)
    half = mixture_halfwidth(variance, tau2, alpha)
    known = np.isfinite(half) & np.isfinite(estimate)
    lower = np.where(known, estimate - np.where(known, half, 0.0), -np.inf)
    upper = np.where(known, estimate + np.where(known, half, 0.0), np.inf)
    interval = Interval(estimate, lower, upper, variance)
    strata = used.sum(axis=-1) + (0 if pairs is None else (np.asarray(pairs.n) >= 2))
    return Stratified(interval, n_champion, n_challenger, unused, strata)
