"""Regression performance on joined rows, equal to scikit-learn's on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from driftloop.feedback.intervals import Metric, normal_mean, r2_bootstrap, rmse_bootstrap


def regression_metrics(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    *,
    confidence: float,
    resamples: int = 1000,
    rng: np.random.Generator | None = None,
) -> dict[str, Metric]:
    """MAE (normal interval), RMSE and R^2 (bootstrap-t on the log scale, the normal interval
    of the log on very many rows; no bounds below ``MIN_REGRESSION_ROWS`` rows)."""
    truth = pd.to_numeric(pd.Series(y_true), errors="coerce").to_numpy(dtype=np.float64)
    predicted = pd.to_numeric(pd.Series(y_pred), errors="coerce").to_numpy(dtype=np.float64)
    keep = np.isfinite(truth) & np.isfinite(predicted)
    truth, predicted = truth[keep], predicted[keep]
    errors = predicted - truth
    rng = rng if rng is not None else np.random.default_rng(0)
    return {
        "mae": normal_mean(np.abs(errors), confidence),
        "rmse": rmse_bootstrap(errors, confidence, resamples, rng),
        "r2": r2_bootstrap(truth, errors, confidence, resamples, rng),
    }
