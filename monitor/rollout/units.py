"""Sticky A/B by unit: the split checked on distinct keys, the comparison with a cluster-robust
variance over keys.

Sticky A/B randomises *units* (users, accounts: the sticky key) and then counts their requests.
Requests of one unit are not independent draws: a few very active users send most requests, and
a user's answers are correlated (the same person, the same kind of input). Counting requests
therefore makes the split look skewed when it is not (the sample-ratio check fires on an A/A test
85 % of the time with lognormal activity, sigma 1.5), and the row-level variance understates the
uncertainty of the difference. Here the split check counts distinct units per arm, and each arm's
mean gets the cluster-robust (sandwich) variance over units,

    V = G / (G - 1) * sum_u (y_u - mean * m_u)^2 / M^2

(``y_u`` the unit's sum, ``m_u`` its row count, ``M`` all rows, ``G`` units), expressed as
:class:`~driftloop.monitor.rollout.sequences.Moments` whose sample variance over ``n`` gives
``V``, so the existing sequences take it as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftloop.monitor.rollout.sequences import Moments
from driftloop.monitor.rollout.srm import srm_log_bayes_factor

__all__ = ["clustered_moments", "unit_split_log_e"]


def clustered_moments(sums: Any, counts: Any) -> Moments:
    """Moments of an arm from per-unit sums and row counts (last axis: units), whose
    ``variance() / n`` is the cluster-robust variance of the arm's mean."""
    y = np.asarray(sums, dtype=float)
    m = np.asarray(counts, dtype=float)
    total = m.sum(axis=-1)
    groups = (m > 0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(total > 0, y.sum(axis=-1) / np.where(total > 0, total, 1), 0.0)
        resid = ((y - mean[..., None] * m) ** 2).sum(axis=-1)
        variance = np.where(
            (groups > 1) & (total > 0),
            groups / np.maximum(groups - 1, 1) * resid / np.where(total > 0, total, 1) ** 2,
            np.inf,
        )
    # Moments.variance() is m2 / (n - 1); the arm's variance of the mean is that over n.
    m2 = np.where(np.isfinite(variance), variance * total * np.maximum(total - 1, 1), np.inf)
    return Moments(total, mean, m2)


def unit_split_log_e(units_a: Any, units_b: Any, weight: float, concentration: float) -> Any:
    """The sequential split check on the distinct units each arm saw (not their requests)."""
    return srm_log_bayes_factor(units_a, units_b, weight, concentration)
