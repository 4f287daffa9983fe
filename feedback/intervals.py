"""Confidence intervals for live performance: pure functions over NumPy arrays.

Which interval for which metric (``method`` in every result):

- ``wilson``: proportions (accuracy, per-class precision and recall, label coverage), the Wilson
  score interval, which keeps its coverage near 0 and 1 and at small n where the Wald one fails.
- ``bootstrap``: statistics of the confusion matrix that are not one proportion (per-class F1,
  macro precision, recall and F1). Rows are exchangeable and these statistics depend on the rows
  only through the confusion matrix, so resampling rows with replacement is exactly drawing a
  multinomial confusion matrix with the observed cell frequencies: ``B`` resamples cost
  ``O(B * K^2)`` whatever the number of rows. Percentile interval.
- ``normal``: means of per-row losses (MAE, log loss).
- ``bootstrap-t``: RMSE and R^2, studentized bootstrap (rows resampled) on the log of the MSE
  and of 1 - R^2, with delta-method standard errors per resample, widened to the normal interval
  on that scale where that is wider, its upper bound capped at ``BOOTSTRAP_T_CAP`` normal
  half-widths. The normal interval of the MSE covered 54-82 % and the delta method for R^2
  64-87 % with skewed errors; percentile and BCa bootstraps fell to 55-90 %. Bootstrap-t alone
  reaches 0.95 with exponential errors from 100 rows, but with lognormal errors it covers 0.87 at
  100-500 rows and 0.92 at 1,000-2,000: a sample that has not yet met the far tail of the
  squared errors looks light, so its own spread (and every resample's) understates the MSE's.
  The side of the interval that such tails push out (the upper bound of the MSE, the lower bound
  of R^2) is therefore stretched by ``tail_stretch`` of the errors' (and, for R^2, of the
  targets') Hill index over their top 30 % (:func:`tail_index`: about 0.37 for normal errors,
  0.54 for Student t3, 0.69 for exponential, 0.88 for lognormal), an index measured on the bulk
  of the sample that a missing extreme barely moves. No bounds with fewer than
  ``MIN_REGRESSION_ROWS`` rows (the value is reported, ``reason`` says why): below that a
  lognormal sample cannot be told from a normal one. Errors with an infinite fourth moment
  (Student t3) still cover only 0.85-0.87; no sample-based interval is valid for every law.
- ``delta-log``: the same above ``BOOTSTRAP_MAX_ROWS`` rows without the resamples: the normal
  interval of the log of the MSE (of 1 - R^2), stretched the same way (the plain normal and
  delta intervals covered 0.92-0.93 there with lognormal errors).
- ``delong-logit``: ROC AUC, DeLong's variance on the logit scale (an interval that stays inside
  (0, 1) and is not symmetric near the ends); for the macro one-vs-rest AUC of several classes
  the per-row influence of every class's AUC is averaged and squared, which is DeLong's estimate
  extended to a sum of AUCs on the same rows. No interval with fewer than ``MIN_AUC_CLASS_ROWS``
  positives or negatives of a class (the value is reported, the bounds are None, ``reason`` says
  why).
- ``newcombe-bonferroni`` / ``welch-bonferroni``: the gap between the best and the worst segment,
  a difference of two proportions (Newcombe's hybrid score interval) or of two means (Welch), at
  a confidence Bonferroni-adjusted over every pair of segments, since the pair was picked by the
  data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

BOOTSTRAP_MAX_ROWS = 20_000
"""Above this many rows RMSE and R^2 skip the resamples (``delta-log``: normal on the log scale)."""
MIN_AUC_CLASS_ROWS = 25
"""Fewest positives and negatives for which an AUC interval is reported."""
BOOTSTRAP_T_CAP = 1.5
"""Most normal half-widths (on the log scale) the bootstrap-t upper bound may reach, before the
tail stretch."""
MIN_REGRESSION_ROWS = 100
"""Fewest rows for which RMSE and R^2 intervals are reported (below, a heavy tail is invisible)."""
TAIL_SHARE = 0.3
"""Share of the largest deviations from the median that :func:`tail_index` averages over."""
TAIL_FREE = 0.45
"""Tail index up to which the log-scale bound is not stretched (normal errors: about 0.37)."""
TAIL_GAIN = 2.5
"""Stretch per unit of tail index above ``TAIL_FREE`` at ``TAIL_ROWS`` rows."""
TAIL_ROWS = 100
"""Rows at which the stretch is ``TAIL_GAIN`` per unit; it falls as ``(TAIL_ROWS / n) ** 0.35``."""
TAIL_DECAY = 0.35
"""Power of ``TAIL_ROWS / n`` in the stretch: slower than n^-1/2, as the skewness of a mean of
squared lognormal errors fades slower than that (with n^-1/2 the normal interval of the log at
20,000-50,000 rows covered 0.92-0.94)."""

Metric = dict[str, Any]
"""``{"value", "lower", "upper", "n", "method", "reason"}``; bounds are None when undefined,
and ``reason`` says why when they are withheld by a rule (too few rows or positives)."""


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence`` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def metric(
    value: float | None,
    lower: float | None,
    upper: float | None,
    n: int,
    method: str,
    reason: str | None = None,
) -> Metric:
    """One metric as reported: value, interval, sample size, interval method and, when the
    bounds are withheld by a rule, the reason."""

    def clean(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x)

    return {
        "value": clean(value),
        "lower": clean(lower),
        "upper": clean(upper),
        "n": int(n),
        "method": method,
        "reason": reason,
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


def _resample_means(
    columns: NDArray[np.float64], resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Means of each column (rows x c) over ``resamples`` row resamples: (resamples, c)."""
    n = columns.shape[0]
    out = np.empty((resamples, columns.shape[1]))
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        index = rng.integers(0, n, size=(size, n))
        out[start : start + size] = columns[index].mean(axis=1)
    return out


def _studentized(
    point: float,
    se: float,
    replicates: NDArray[np.float64],
    replicate_se: NDArray[np.float64],
    confidence: float,
) -> tuple[float, float] | None:
    """Bootstrap-t bounds of a statistic on its (already transformed) scale, widened to the
    normal interval on that scale where it is wider (skewed samples can leave the bootstrap-t
    quantiles too short on one side; the union covers at least as often as either). The upper
    bound is capped at ``BOOTSTRAP_T_CAP`` normal half-widths above the point: a resample that
    leaves out the one extreme row has a tiny standard error and a t of -100 or less (with
    lognormal errors at 100 rows the uncapped RMSE bound reached 6,500 times the value, 10^7
    once stretched)."""
    ok = np.isfinite(replicates) & np.isfinite(replicate_se) & (replicate_se > 0)
    if ok.sum() < 10 or not se > 0:
        return None
    t = (replicates[ok] - point) / replicate_se[ok]
    tail = (1 - confidence) / 2
    t_lo, t_hi = np.quantile(t, [tail, 1 - tail])
    z = z_value(confidence)
    lower = min(point - float(t_hi) * se, point - z * se)
    upper = min(max(point - float(t_lo) * se, point + z * se), point + BOOTSTRAP_T_CAP * z * se)
    return lower, upper


def _log_mean_se(means: NDArray[np.float64], n: int) -> tuple[float, float, float, float]:
    """Delta-method pieces from means of (a, c, a^2, c^2, a*c): log a - log c and its se."""
    a, c, aa, cc, ac = means
    var_a, var_c, cov = aa - a * a, cc - c * c, ac - a * c
    value = math.log(a) - math.log(c) if c > 0 else math.log(a)
    if c > 0:
        var = (var_a / (a * a) + var_c / (c * c) - 2 * cov / (a * c)) / n
    else:
        var = var_a / (a * a) / n
    return value, math.sqrt(max(var, 0.0)), a, c


def _log_scale_replicates(
    means: NDArray[np.float64], n: int, with_c: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a, c, aa, cc, ac = (means[:, i] for i in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (aa - a * a) / (a * a)
        value = np.log(a)
        if with_c:
            var = var + (cc - c * c) / (c * c) - 2 * (ac - a * c) / (a * c)
            value = value - np.log(c)
        return value, np.sqrt(np.maximum(var, 0.0) / n)


def tail_index(values: NDArray[np.float64]) -> float:
    """Hill index of the deviations from the median over their largest ``TAIL_SHARE``: the mean
    log ratio of those deviations to the largest one below them (1 / the exponent of a power-law
    tail that matches the sample there). It reads the bulk of the upper tail, not its extreme, so
    a sample that has not met the far tail of a lognormal still shows it (about 0.88 for
    lognormal errors with sigma 1 at every size, 0.37 for normal ones). 0 when too few values
    differ from the median to tell."""
    deviations = np.abs(values - np.median(values))
    deviations = deviations[deviations > 0]
    n = len(deviations)
    k = max(int(TAIL_SHARE * n), 5)
    if n < 2 * k:
        return 0.0
    part = np.partition(deviations, n - k - 1)
    return float(np.log(part[n - k :] / part[n - k - 1]).mean())


def tail_stretch(index: float, n: int) -> float:
    """Factor on the tail side of a log-scale interval for a tail index ``index`` at ``n`` rows:
    1 up to ``TAIL_FREE``, then growing with the index and shrinking as n^-0.35 (calibrated on
    seeded lognormal and exponential errors at 100-50,000 rows)."""
    excess = max(0.0, index - TAIL_FREE)
    return 1.0 + TAIL_GAIN * excess * (TAIL_ROWS / max(n, 1)) ** TAIL_DECAY


def _too_few_rows() -> str:
    return f"fewer than {MIN_REGRESSION_ROWS} rows"


def _log_bounds(
    point: float,
    se: float,
    columns: NDArray[np.float64],
    with_c: bool,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[tuple[float, float] | None, str]:
    """Bounds on the log scale before the tail stretch, and their method: bootstrap-t up to
    ``BOOTSTRAP_MAX_ROWS`` rows, the normal (delta-method) interval of the log above."""
    n = columns.shape[0]
    if n > BOOTSTRAP_MAX_ROWS:
        if not se > 0:
            return None, "delta-log"
        z = z_value(confidence)
        return (point - z * se, point + z * se), "delta-log"
    replicates, replicate_se = _log_scale_replicates(
        _resample_means(columns, resamples, rng), n, with_c
    )
    return _studentized(point, se, replicates, replicate_se, confidence), "bootstrap-t"


def rmse_bootstrap(
    errors: NDArray[np.float64], confidence: float, resamples: int, rng: np.random.Generator
) -> Metric:
    """Root mean squared error with a bootstrap-t interval on the log of the MSE (the normal
    interval of the log above ``BOOTSTRAP_MAX_ROWS`` rows), its upper bound stretched by the
    errors' :func:`tail_index`; the value only, with a ``reason``, below ``MIN_REGRESSION_ROWS``
    rows. Squared errors are skewed; the log scale and studentizing are what keep the coverage
    where percentile and BCa intervals fall short, and the stretch what keeps it with lognormal
    errors."""
    n = len(errors)
    if n == 0:
        return metric(None, None, None, 0, "bootstrap-t")
    a = errors * errors
    point = float(a.mean())
    root = math.sqrt(point)
    if n < MIN_REGRESSION_ROWS:
        return metric(root, None, None, n, "bootstrap-t", _too_few_rows())
    if point <= 0:
        return metric(0.0, None, None, n, "bootstrap-t")
    ones = np.ones(n)
    columns = np.column_stack([a, ones, a * a, ones, a])
    se = math.sqrt(max(float((a * a).mean()) - point * point, 0.0) / n) / point
    log_mse = math.log(point)
    bounds, method = _log_bounds(log_mse, se, columns, False, confidence, resamples, rng)
    if bounds is None:
        return metric(root, None, None, n, method)
    upper = log_mse + (bounds[1] - log_mse) * tail_stretch(tail_index(errors), n)
    return metric(root, math.exp(bounds[0] / 2), math.exp(upper / 2), n, method)


def r2_bootstrap(
    y: NDArray[np.float64],
    errors: NDArray[np.float64],
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> Metric:
    """R^2 with a bootstrap-t interval on log(1 - R^2) = log MSE - log var(y) (the normal
    interval of that log above ``BOOTSTRAP_MAX_ROWS`` rows), its lower bound stretched by the
    larger :func:`tail_index` of the errors and the targets; the value only, with a ``reason``,
    below ``MIN_REGRESSION_ROWS`` rows."""
    n = len(y)
    if n < 3:
        return metric(None, None, None, n, "bootstrap-t")
    yc = y - y.mean()
    a, c = errors * errors, yc * yc
    if c.mean() <= 0:
        return metric(None, None, None, n, "bootstrap-t")
    point = 1 - float(a.mean() / c.mean())
    if n < MIN_REGRESSION_ROWS:
        return metric(point, None, None, n, "bootstrap-t", _too_few_rows())
    if a.mean() <= 0:
        return metric(point, None, None, n, "bootstrap-t")
    columns = np.column_stack([a, c, a * a, c * c, a * c])
    value, se, _, _ = _log_mean_se(columns.mean(axis=0), n)
    bounds, method = _log_bounds(value, se, columns, True, confidence, resamples, rng)
    if bounds is None:
        return metric(point, None, None, n, method)
    index = max(tail_index(errors), tail_index(y))
    upper = value + (bounds[1] - value) * tail_stretch(index, n)
    # 1 - R^2 = exp(value): the upper bound of the log gives the lower bound of R^2.
    return metric(point, 1 - math.exp(upper), 1 - math.exp(bounds[0]), n, method)


def difference_interval(
    best: Metric,
    worst: Metric,
    best_values: NDArray[np.float64],
    worst_values: NDArray[np.float64],
    proportion: bool,
    confidence: float,
    pairs: int,
) -> tuple[float | None, float | None, str]:
    """Interval of ``best - worst`` at ``confidence`` Bonferroni-adjusted over ``pairs``."""
    adjusted = 1 - (1 - confidence) / max(pairs, 1)
    if proportion:
        a = wilson(float(best_values.sum()), best_values.size, adjusted)
        b = wilson(float(worst_values.sum()), worst_values.size, adjusted)
        p1, p2 = float(a["value"]), float(b["value"])
        l1, u1, l2, u2 = a["lower"], a["upper"], b["lower"], b["upper"]
        d = p1 - p2
        lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
        return max(-1.0, lower), min(1.0, upper), "newcombe-bonferroni"
    if best_values.size < 2 or worst_values.size < 2:
        return None, None, "welch-bonferroni"
    d = float(best_values.mean() - worst_values.mean())
    se = math.sqrt(
        float(best_values.var(ddof=1)) / best_values.size
        + float(worst_values.var(ddof=1)) / worst_values.size
    )
    half = z_value(adjusted) * se
    return d - half, d + half, "welch-bonferroni"


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
    fewest = n
    for column in columns:
        positive = codes == column
        if positive.all() or not positive.any():
            continue
        fewest = min(fewest, int(positive.sum()), int((~positive).sum()))
        auc, row_influence = auc_with_influence(positive, scores[:, column])
        aucs.append(auc)
        influence += row_influence
    method = "delong-logit"
    if not aucs:
        return metric(None, None, None, n, method)
    value = float(np.mean(aucs))
    if fewest < MIN_AUC_CLASS_ROWS:
        reason = f"fewer than {MIN_AUC_CLASS_ROWS} positives or negatives of a class"
        return metric(value, None, None, n, method, reason)
    se = math.sqrt(float(((influence / len(aucs)) ** 2).sum()))
    # On the logit scale: d logit(A) = dA / (A (1 - A)); an AUC of 0 or 1 gets a tiny offset so
    # the interval still opens towards the inside.
    eps = 0.5 / fewest
    centre = min(max(value, eps), 1 - eps)
    logit = math.log(centre / (1 - centre))
    half = z_value(confidence) * max(se, 1e-12) / (centre * (1 - centre))
    lower = 1 / (1 + math.exp(-(logit - half)))
    upper = 1 / (1 + math.exp(-(logit + half)))
    return metric(value, min(lower, value), max(upper, value), n, method)
