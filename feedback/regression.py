"""Regression performance on joined rows, equal to scikit-learn's on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from driftloop.feedback.intervals import Metric, normal_mean, r2, rmse


def regression_metrics(
    y_true: NDArray[Any], y_pred: NDArray[Any], *, confidence: float
) -> dict[str, Metric]:
    """MAE (normal interval), RMSE (normal on squared errors) and R^2 (delta method)."""
    truth = pd.to_numeric(pd.Series(y_true), errors="coerce").to_numpy(dtype=np.float64)
    predicted = pd.to_numeric(pd.Series(y_pred), errors="coerce").to_numpy(dtype=np.float64)
    keep = np.isfinite(truth) & np.isfinite(predicted)
    truth, predicted = truth[keep], predicted[keep]
    errors = predicted - truth
    return {
        "mae": normal_mean(np.abs(errors), confidence),
        "rmse": rmse(errors, confidence),
        "r2": r2(truth, errors, confidence),
    }
