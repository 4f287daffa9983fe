"""DLE on a scikit-learn generated regression: the MAE and RMSE intervals cover the realized
values on covariate-shifted windows at about their nominal rate."""

from __future__ import annotations

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
