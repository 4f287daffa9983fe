"""Intervals that cover where the old ones did not (issue 17): AUC with few positives, RMSE and
R^2 with skewed and lognormal errors, the gap between segments. Seeded and bounded: coverage is
counted among the intervals that are reported, and the tests also require that they are reported
where the rules say they should be (so no rule passes by withholding bounds)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from driftloop.feedback.intervals import (
    BOOTSTRAP_MAX_ROWS,
    MIN_AUC_CLASS_ROWS,
    MIN_REGRESSION_ROWS,
    TAIL_FREE,
    difference_interval,
    macro_auc,
    r2_bootstrap,
    rmse_bootstrap,
    tail_index,
    tail_stretch,
    wilson,
)

REPS = 300
LOW = 0.92


def test_an_auc_with_too_few_positives_gets_no_interval() -> None:
    rng = np.random.default_rng(1)
    codes = (np.arange(50) < 5).astype(np.int64)  # 5 positives of 50
    scores = rng.normal(size=(50, 2))
    got = macro_auc(codes, scores, 0.95)
    assert got["value"] is not None
    assert got["lower"] is None
    assert got["upper"] is None
    assert got["method"] == "delong-logit"
    assert got["reason"] == f"fewer than {MIN_AUC_CLASS_ROWS} positives or negatives of a class"


def test_the_logit_auc_interval_covers_with_ten_percent_positives() -> None:
    rng = np.random.default_rng(2)
    truth = NormalDist().cdf(1 / math.sqrt(2))
    hits = []
    for _ in range(REPS):
        codes = (rng.random(500) < 0.1).astype(np.int64)
        scores = rng.normal(size=(500, 2))
        scores[:, 1] += codes
        got = macro_auc(codes, scores, 0.95)
        if got["lower"] is not None:
            hits.append(got["lower"] <= truth <= got["upper"])
    assert len(hits) >= REPS * 0.9  # reported in nearly every window (>= 25 positives)
    assert np.mean(hits) >= LOW
    assert 0 < got["lower"] < got["value"] < got["upper"] < 1
    assert MIN_AUC_CLASS_ROWS == 25


@pytest.mark.slow
def test_bootstrap_rmse_and_r2_cover_with_skewed_errors() -> None:
    rng = np.random.default_rng(3)

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=m)
        errors = rng.exponential(1, m) - 1
        return x + errors, errors

    y, errors = draw(2_000_000)
    true_rmse = math.sqrt(float((errors * errors).mean()))
    true_r2 = 1 - float((errors * errors).mean() / y.var())
    rmse_hits, r2_hits = [], []
    for _ in range(REPS):
        y, errors = draw(400)
        a = rmse_bootstrap(errors, 0.95, 400, rng)
        b = r2_bootstrap(y, errors, 0.95, 400, rng)
        rmse_hits.append(a["lower"] <= true_rmse <= a["upper"])
        r2_hits.append(b["lower"] <= true_r2 <= b["upper"])
        assert a["method"] == b["method"] == "bootstrap-t"
    assert np.mean(rmse_hits) >= LOW, np.mean(rmse_hits)
    assert np.mean(r2_hits) >= LOW, np.mean(r2_hits)


SIGNAL_SD = 2.0


def regression_windows(
    kind: str, reps: int, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``reps`` windows of ``n`` rows drawn at once: targets y = x + e with x ~ N(0, 2^2) and
    errors e (prediction is x, so the squared errors are e^2) of mean 0; the true RMSE and R^2."""
    if kind == "lognormal":
        errors = rng.lognormal(0.0, 1.0, (reps, n)) - math.exp(0.5)
        variance = (math.e - 1) * math.e
    elif kind == "exponential":
        errors = rng.exponential(1.0, (reps, n)) - 1.0
        variance = 1.0
    else:
        errors = rng.normal(size=(reps, n))
        variance = 1.0
    y = rng.normal(0.0, SIGNAL_SD, (reps, n)) + errors
    return y, errors, math.sqrt(variance), 1 - variance / (SIGNAL_SD**2 + variance)


def coverage(
    kind: str, n: int, reps: int, resamples: int, seed: int
) -> tuple[list[bool], list[bool], list[float], list[float]]:
    """Hits of the RMSE and R^2 intervals over seeded windows (every window must report bounds),
    the stretch each window's RMSE upper bound got, and its upper bound over its value."""
    rng = np.random.default_rng(seed)
    y, errors, true_rmse, true_r2 = regression_windows(kind, reps, n, rng)
    rmse_hits, r2_hits, stretches, reach = [], [], [], []
    method = "bootstrap-t" if n <= BOOTSTRAP_MAX_ROWS else "delta-log"
    for window_y, window_errors in zip(y, errors, strict=True):
        a = rmse_bootstrap(window_errors, 0.95, resamples, rng)
        b = r2_bootstrap(window_y, window_errors, 0.95, resamples, rng)
        for got in (a, b):  # reported: at least MIN_REGRESSION_ROWS rows, whatever the tail
            assert got["lower"] is not None, got
            assert got["upper"] is not None, got
            assert (got["method"], got["reason"]) == (method, None), got
        rmse_hits.append(a["lower"] <= true_rmse <= a["upper"])
        r2_hits.append(b["lower"] <= true_r2 <= b["upper"])
        stretches.append(tail_stretch(tail_index(window_errors), n))
        reach.append(a["upper"] / a["value"])
    return rmse_hits, r2_hits, stretches, reach


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "reps", "resamples", "widest"),
    [(100, 300, 400, 50.0), (200, 300, 300, 30.0), (500, 200, 200, 15.0)],
)
def test_rmse_and_r2_cover_with_lognormal_errors(
    n: int, reps: int, resamples: int, widest: float
) -> None:
    # The bootstrap-t alone covered 0.85 / 0.84 at 100 rows, 0.88 / 0.90 at 200 and 0.91 / 0.90
    # at 500 (RMSE / R^2, 1,000 seeded windows): a window that has not met the far tail of the
    # squared errors looks light to itself and to every resample.
    rmse_hits, r2_hits, stretches, reach = coverage("lognormal", n, reps, resamples, seed=n)
    assert np.mean(rmse_hits) >= LOW, np.mean(rmse_hits)
    assert np.mean(r2_hits) >= LOW, np.mean(r2_hits)
    assert np.median(stretches) > 1
    # Not absurdly wide: uncapped, a resample without the one extreme row put the RMSE's upper
    # bound 10^2 times its value in one window of ten at 100 rows, and 10^7 times in the worst.
    assert np.quantile(reach, 0.9) < widest / 5, np.quantile(reach, 0.9)
    assert max(reach) < widest, max(reach)


def test_rmse_and_r2_cover_with_exponential_errors_from_the_minimum_rows() -> None:
    n = MIN_REGRESSION_ROWS
    rmse_hits, r2_hits, stretches, _ = coverage("exponential", n, 300, 200, seed=20 + n)
    assert np.mean(rmse_hits) >= LOW, np.mean(rmse_hits)
    assert np.mean(r2_hits) >= LOW, np.mean(r2_hits)
    assert 1 < np.median(stretches) < 2


def test_rmse_and_r2_above_the_bootstrap_cap_use_the_stretched_log_interval() -> None:
    # Above BOOTSTRAP_MAX_ROWS the normal interval of the MSE and the delta-method one of R^2
    # covered 0.924 / 0.930 with lognormal errors (1,000 seeded windows of 20,001 rows); on the
    # log scale with the tail stretch 0.95 / 0.95 (400 windows).
    rmse_hits, r2_hits, stretches, _ = coverage("lognormal", BOOTSTRAP_MAX_ROWS + 1, 400, 0, 30)
    assert np.mean(rmse_hits) >= LOW, np.mean(rmse_hits)
    assert np.mean(r2_hits) >= LOW, np.mean(r2_hits)
    assert min(stretches) > 1


@pytest.mark.parametrize("n", [100, 300])
def test_rmse_and_r2_with_normal_errors_are_reported_cover_and_are_not_stretched(n: int) -> None:
    rmse_hits, r2_hits, stretches, _ = coverage("normal", n, 200, 300, seed=10 + n)
    assert np.mean(rmse_hits) >= LOW, np.mean(rmse_hits)
    assert np.mean(r2_hits) >= LOW, np.mean(r2_hits)
    # Normal errors keep the bootstrap-t width in most windows (about 7 in 8 at 100 rows, 49 in
    # 50 at 300); the rest are stretched a little (by 1 % on average at 100 rows).
    assert np.median(stretches) == 1.0
    assert np.mean(stretches) < 1.05


def test_rmse_and_r2_below_the_minimum_rows_report_the_value_and_the_reason() -> None:
    rng = np.random.default_rng(6)
    y, errors, _, _ = regression_windows("lognormal", 1, MIN_REGRESSION_ROWS, rng)
    few_y, few = y[0, :-1], errors[0, :-1]
    a = rmse_bootstrap(few, 0.95, 200, rng)
    b = r2_bootstrap(few_y, few, 0.95, 200, rng)
    assert a["value"] == pytest.approx(math.sqrt(float((few * few).mean())))
    assert b["value"] == pytest.approx(1 - float((few * few).mean() / few_y.var()))
    for got in (a, b):
        assert (got["lower"], got["upper"], got["n"]) == (None, None, MIN_REGRESSION_ROWS - 1)
        assert got["reason"] == f"fewer than {MIN_REGRESSION_ROWS} rows"
    enough = rmse_bootstrap(errors[0], 0.95, 200, rng)
    assert enough["lower"] is not None
    assert enough["reason"] is None


def test_the_tail_index_reads_the_bulk_of_the_tail() -> None:
    rng = np.random.default_rng(7)
    normal = tail_index(rng.normal(size=100_000))
    lognormal = tail_index(rng.lognormal(0, 1, 100_000))
    assert 0.3 < normal < TAIL_FREE < 0.8 < lognormal < 1.0
    assert tail_index(np.zeros(100)) == 0.0  # nothing deviates: no evidence of a tail
    assert tail_stretch(normal, 100) == 1.0
    assert tail_stretch(lognormal, 100) > tail_stretch(lognormal, 1_000) > 1.0


def test_the_segment_gap_interval_covers_the_gap_between_the_picked_pair() -> None:
    rng = np.random.default_rng(4)
    accuracy = np.array([0.9, 0.85, 0.8, 0.8, 0.75])
    size, pairs = 120, 10
    hits = []
    for _ in range(REPS):
        parts = [rng.random(size) < p for p in accuracy]
        values = np.array([p.mean() for p in parts])
        best, worst = int(values.argmax()), int(values.argmin())
        lower, upper, method = difference_interval(
            wilson(float(parts[best].sum()), size, 0.95),
            wilson(float(parts[worst].sum()), size, 0.95),
            parts[best].astype(float),
            parts[worst].astype(float),
            True,
            0.95,
            pairs,
        )
        assert method == "newcombe-bonferroni"
        assert lower is not None
        assert upper is not None
        hits.append(lower <= accuracy[best] - accuracy[worst] <= upper)
    assert np.mean(hits) >= LOW


def test_the_segment_gap_of_means_uses_welch() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(1, 1, 200), rng.normal(2, 1, 200)
    lower, upper, method = difference_interval({}, {}, a, b, False, 0.95, 3)
    assert method == "welch-bonferroni"
    assert lower is not None
    assert upper is not None
    assert lower < -1 < upper
