"""Confidence intervals for live performance: pure functions over NumPy arrays.

Which interval for which metric (``method`` in every result):

- ``wilson``: proportions (accuracy, per-class precision and recall, label coverage), the Wilson
  score interval, which keeps its coverage near 0 and 1 and at small n where the Wald one fails.
- ``bootstrap``: statistics of the confusion matrix that are not one proportion (per-class F1,
  macro precision, recall and F1). Rows are exchangeable and these statistics depend on the rows
  only through the confusion matrix, so resampling rows with replacement is exactly drawing a
  multinomial confusion matrix with the observed cell frequencies: ``B`` resamples cost
  ``O(B * K^2)`` whatever the number of rows. Percentile interval.
- ``normal``: means of per-row losses (MAE, log loss) and, through a monotone transform, RMSE
  (the normal interval of the mean squared error, square-rooted).
- ``delta``: R^2 = 1 - mean(e^2) / mean((y - mean y)^2), delta method on the two means.
- ``delong``: ROC AUC, normal with the DeLong variance; for the macro one-vs-rest AUC of several
  classes the per-row influence of every class's AUC is averaged and squared, which is DeLong's
  estimate extended to a sum of AUCs on the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

Metric = dict[str, Any]
"""``{"value", "lower", "upper", "n", "method"}``; bounds are None when undefined."""


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence`` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def metric(
    value: float | None,
    lower: float | None,
    upper: float | None,
    n: int,
    method: str,
) -> Metric:
    """One metric as reported: value, interval, sample size and interval method."""

    def clean(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x)

    return {
        "value": clean(value),
        "lower": clean(lower),
        "upper": clean(upper),
        "n": int(n),
        "method": method,
    }


def wilson(successes: float, n: int, confidence: float) -> Metric:
    """A proportion with its Wilson score interval."""
    if n <= 0:
        return metric(None, None, None, 0, "wilson")
    p = successes / n
    z = z_value(confidence)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    lower = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends, no rounding
    upper = 1.0 if successes >= n else min(1.0, centre + half)
    return metric(p, lower, upper, n, "wilson")


def normal_mean(values: NDArray[np.float64], confidence: float) -> Metric:
    """The mean of per-row values with a normal (CLT) interval."""
    n = len(values)
    if n == 0:
        return metric(None, None, None, 0, "normal")
    mean = float(values.mean())
    if n < 2:
        return metric(mean, None, None, n, "normal")
    half = z_value(confidence) * float(values.std(ddof=1)) / math.sqrt(n)
    return metric(mean, mean - half, mean + half, n, "normal")


def rmse(errors: NDArray[np.float64], confidence: float) -> Metric:
    """Root mean squared error; the normal interval of the MSE, square-rooted."""
    mse = normal_mean(errors * errors, confidence)
    root = {
        k: None if mse[k] is None else math.sqrt(max(0.0, mse[k]))
        for k in ("value", "lower", "upper")
    }
    return metric(root["value"], root["lower"], root["upper"], mse["n"], "normal")


def r2(y: NDArray[np.float64], errors: NDArray[np.float64], confidence: float) -> Metric:
    """R^2 with a delta-method interval."""
    n = len(y)
    if n < 3:
        return metric(None, None, None, n, "delta")
    a_i = errors * errors
    b_i = (y - y.mean()) ** 2
    a, b = float(a_i.mean()), float(b_i.mean())
    if b == 0:
        return metric(None, None, None, n, "delta")
    value = 1 - a / b
    gradient = np.array([-1 / b, a / (b * b)])
    covariance = np.cov(np.vstack([a_i, b_i]), ddof=1) / n
    se = math.sqrt(max(0.0, float(gradient @ covariance @ gradient)))
    half = z_value(confidence) * se
    return metric(value, value - half, value + half, n, "delta")


def confusion_bootstrap(
    matrix: NDArray[np.int64],
    statistic: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    *,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Percentile bounds of ``statistic`` over multinomial resamples of a confusion matrix.

    ``statistic`` maps a stack of matrices ``(B, K, K)`` to a stack of statistics ``(B, m)``;
    returns the lower and upper bounds, each of shape ``(m,)``.
    """
    n = int(matrix.sum())
    k = matrix.shape[0]
    draws = rng.multinomial(n, matrix.ravel() / n, size=resamples).reshape(resamples, k, k)
    values = statistic(draws.astype(np.float64))
    tail = (1 - confidence) / 2 * 100
    lower, upper = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    return lower, upper


def auc_with_influence(
    positive: NDArray[np.bool_], scores: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64]]:
    """ROC AUC of ``scores`` for ``positive`` rows and each row's influence on it (DeLong).

    The sum of squared influences is DeLong's variance of the AUC.
    """
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    ranks = rankdata(scores)
    pos_ranks = rankdata(scores[positive])
    neg_ranks = rankdata(scores[~positive])
    auc = (float(ranks[positive].sum()) - n1 * (n1 + 1) / 2) / (n1 * n0)
    influence = np.empty(len(scores))
    v10 = (ranks[positive] - pos_ranks) / n0  # share of negatives each positive beats
    v01 = 1 - (ranks[~positive] - neg_ranks) / n1  # share of positives that beat each negative
    influence[positive] = (v10 - auc) / n1
    influence[~positive] = (v01 - auc) / n0
    return auc, influence


def macro_auc(codes: NDArray[np.int64], scores: NDArray[np.float64], confidence: float) -> Metric:
    """Macro one-vs-rest ROC AUC over the score columns, with its DeLong interval.

    ``codes`` holds each row's true class as a column index of ``scores``. Two columns give the
    binary AUC of column 1. Classes absent among the rows (no positives) are left out.
    """
    n, k = scores.shape
    columns = [1] if k == 2 else list(range(k))
    aucs, influence = [], np.zeros(n)
    for column in columns:
        positive = codes == column
        if positive.all() or not positive.any():
            continue
        auc, row_influence = auc_with_influence(positive, scores[:, column])
        aucs.append(auc)
        influence += row_influence
    if not aucs:
        return metric(None, None, None, n, "delong")
    value = float(np.mean(aucs))
    se = math.sqrt(float(((influence / len(aucs)) ** 2).sum()))
    half = z_value(confidence) * se
    return metric(value, max(0.0, value - half), min(1.0, value + half), n, "delong")
