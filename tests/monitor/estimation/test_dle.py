"""DLE on a scikit-learn generated regression: the MAE and RMSE intervals cover the realized
values on covariate-shifted windows at about their nominal rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1
from sklearn.ensemble import RandomForestRegressor

from driftloop.monitor.estimation import NotEstimableError, RegressionEstimator

COLUMNS = [f"x{i}" for i in range(10)]


def test_mae_and_rmse_intervals_cover_under_covariate_shift() -> None:
    x, y = make_friedman1(3000, noise=1.0, random_state=0)
    rng = np.random.default_rng(1)
    train, reference, pool = np.array_split(rng.permutation(len(y)), 3)
    model = RandomForestRegressor(40, min_samples_leaf=5, random_state=0, n_jobs=1)
    model.fit(x[train], y[train])
    frame = pd.DataFrame(x, columns=COLUMNS)
    estimator = RegressionEstimator.fit(
        frame.iloc[reference], model.predict(x[reference]), y[reference]
    )
    covered: dict[str, list[bool]] = {"mae": [], "rmse": []}
    for _ in range(40):
        weight = np.exp(rng.uniform(-2, 2) * (x[pool, 0] - 0.5) * 2)
        rows = pool[rng.choice(len(pool), 200, replace=False, p=weight / weight.sum())]
        result = estimator.estimate(frame.iloc[rows], model.predict(x[rows]), labels=y[rows])
        for name in covered:
            covered[name].append(result.metrics[name].covers(result.realized[name]))
    for name, hits in covered.items():
        assert np.mean(hits) >= 0.85, (name, np.mean(hits))


def test_too_few_reference_labels_is_said_not_estimated() -> None:
    frame = pd.DataFrame({"a": np.arange(50.0)})
    with pytest.raises(NotEstimableError, match="too few labeled reference rows"):
        RegressionEstimator.fit(frame, np.arange(50.0), np.full(50, np.nan))


def test_the_error_follows_a_text_column_and_missing_values_have_a_bin_of_their_own() -> None:
    """The error grows with a category and where a number is missing (each on its own: the
    error model is additive); windows leaning to the noisy category and to missing values are
    estimated worse, and their intervals cover."""
    rng = np.random.default_rng(4)

    def rows(n: int, noisy_share: float, missing_share: float) -> tuple[pd.DataFrame, Any]:
        kind = np.where(rng.random(n) < noisy_share, "noisy", "calm")
        kind[rng.random(n) < 0.02] = "other"  # rare, but a bin of its own
        level = rng.normal(size=n)
        level[rng.random(n) < missing_share] = np.nan
        scale = 1.0 + 2.0 * (kind == "noisy") + 1.0 * np.isnan(level)
        prediction = np.nan_to_num(level) * 2.0
        truth = prediction + rng.normal(size=n) * scale
        return pd.DataFrame({"kind": kind, "level": level}), (prediction, truth)

    frame, (prediction, truth) = rows(4000, 0.3, 0.1)
    estimator = RegressionEstimator.fit(frame, prediction, truth)
    covered: list[bool] = []
    mae: dict[float, float] = {}
    for share in np.linspace(0.0, 0.9, 10):
        window, (window_prediction, window_truth) = rows(800, share, share / 2)
        window.loc[:9, "kind"] = "never seen"  # the bin of unseen values
        result = estimator.estimate(window, window_prediction, labels=window_truth)
        covered += [result.metrics[m].covers(result.realized[m]) for m in ("mae", "rmse")]
        estimate = result.metrics["mae"].estimate
        assert estimate is not None
        mae[share] = estimate
    assert np.mean(covered) >= 0.85, covered
    assert mae[0.9] > 2.0 * mae[0.0], mae


def test_a_wide_reference_gets_fewer_bins_per_input_and_still_tracks_the_error() -> None:
    """Past ``BUDGET`` bins in all, the inputs along which the error varies keep ``BINS`` and
    the others get fewer, so the system solved stays bounded (the co-occurrence counts are built
    a slice of rows at a time) and the estimate still follows the error up and down with the one
    input it depends on, among 149 that do not matter."""
    from driftloop.monitor.estimation.dle import BINS, BUDGET

    rng = np.random.default_rng(5)
    width = 150
    x = rng.normal(size=(8000, width))
    prediction = x[:, 0]
    truth = prediction + rng.normal(size=len(x)) * (0.5 + np.abs(x[:, 1]))
    frame = pd.DataFrame(x, columns=[f"c{i}" for i in range(width)])
    estimator = RegressionEstimator.fit(frame.iloc[2000:], prediction[2000:], truth[2000:])
    inputs = width + 1  # and the prediction
    assert estimator.bins.size <= BUDGET + inputs  # a bin for missing values per input
    assert len(estimator.bins.edges[1]) == BINS - 1  # the input the error depends on: all
    assert sum(len(e) < BINS - 1 for e in estimator.bins.edges) > 100
    calm = np.abs(x[:2000, 1]).argsort()[:500]
    noisy = np.abs(x[:2000, 1]).argsort()[-500:]
    mae = []
    for rows in (calm, noisy):  # the quarters of the window with the least and the most |x1|
        result = estimator.estimate(frame.iloc[rows], prediction[rows], labels=truth[rows])
        for name in ("mae", "rmse"):
            estimate, realized = result.metrics[name].estimate, result.realized[name]
            assert estimate is not None
            # Measured: within 8 % with the 2 inputs alone (within-bin selection of so extreme
            # windows), 11 % (mae) and 15 % (rmse) with the 148 others, whose bins add noise.
            assert abs(estimate - realized) < 0.2 * realized, (name, estimate, realized)
            if name == "mae":
                mae.append(estimate)
    assert mae[0] < 0.4 * mae[1]  # realized: 0.28
