"""Intervals that cover where the old ones did not (issue 17): AUC with few positives, RMSE and
R^2 with skewed errors, the gap between segments. Seeded and bounded."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from driftloop.feedback.intervals import (
    MIN_AUC_CLASS_ROWS,
    difference_interval,
    macro_auc,
    r2_bootstrap,
    rmse_bootstrap,
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
