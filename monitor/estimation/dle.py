"""Direct loss estimation (DLE) for regressors, before labels arrive.

On the reference, gradient-boosted trees learn the absolute and the squared error of the model
from its inputs and its prediction; on a production window the mean of the predicted errors
estimates MAE and MSE (RMSE is its square root). Out-of-fold residuals of those error models give
each row's variance around its predicted error, so the interval is that of the realized metric
on a window of this size, plus the error models' own bias measured out of fold. Like CBPE it
assumes covariate shift only: under concept shift the estimate is blind.

Needs scikit-learn (``pip install 'driftloop[estimation]'``), imported when a model is fitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import norm

from driftloop.monitor.estimation.result import Estimate, Estimation, NotEstimableError

MIN_REFERENCE_ROWS = 100
FOLDS = 2


@contextmanager
def _one_thread() -> Iterator[None]:
    """Fit and predict on one thread: OpenMP's spinning workers make gradient boosting ~100x
    slower on a busy two-core machine (measured), and windows are small."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _booster(seed: int) -> Any:
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise NotEstimableError(
            "estimating regression metrics needs scikit-learn: pip install 'driftloop[estimation]'"
        ) from exc
    return HistGradientBoostingRegressor(
        max_iter=40, learning_rate=0.15, max_bins=64, random_state=seed
    )


def design(features: pd.DataFrame, predictions: NDArray[np.float64]) -> NDArray[np.float64]:
    """Numbers as they are, other columns as category codes (unseen: NaN), then the prediction."""
    columns = []
    for name in features.columns:
        column = features[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            columns.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            codes = pd.util.hash_array(column.astype(str).to_numpy()).astype(np.float64)
            columns.append(codes % 1_000_003)
    columns.append(np.asarray(predictions, dtype=np.float64))
    return np.column_stack(columns)


@dataclass
class _ErrorModel:
    """Predicts one kind of error (absolute or squared) and the variance around it."""

    mean: Any
    spread: Any
    bias_se: float

    @classmethod
    def fit(cls, x: NDArray[np.float64], target: NDArray[np.float64], seed: int) -> _ErrorModel:
        folds = np.random.default_rng(seed).permutation(len(x)) % FOLDS
        out_of_fold = np.empty_like(target)
        for fold in range(FOLDS):
            test = folds == fold
            out_of_fold[test] = _booster(seed).fit(x[~test], target[~test]).predict(x[test])
        residual = target - out_of_fold
        spread = _booster(seed).fit(x, residual**2)
        return cls(
            mean=_booster(seed).fit(x, target),
            spread=spread,
            bias_se=float(residual.std(ddof=1) / np.sqrt(len(x))),
        )

    def interval(self, x: NDArray[np.float64], z: float) -> tuple[float, float, float]:
        predicted = np.clip(self.mean.predict(x), 0.0, None)
        variance = np.clip(self.spread.predict(x), 0.0, None)
        center = float(predicted.mean())
        half = z * float(np.sqrt(variance.sum() / len(x) ** 2 + self.bias_se**2))
        return center, max(center - half, 0.0), center + half


@dataclass
class RegressionEstimator:
    """DLE fitted on a reference: error models for MAE and MSE."""

    columns: list[str]
    absolute: _ErrorModel
    squared: _ErrorModel

    @classmethod
    def fit(
        cls,
        features: pd.DataFrame,
        predictions: NDArray[np.float64],
        labels: NDArray[np.float64],
        *,
        seed: int = 0,
    ) -> RegressionEstimator:
        """Fit on the reference's features, the model's predictions and the true values."""
        y = np.asarray(labels, dtype=np.float64)
        yhat = np.asarray(predictions, dtype=np.float64)
        keep = np.isfinite(y) & np.isfinite(yhat)
        if keep.sum() < MIN_REFERENCE_ROWS:
            raise NotEstimableError(
                f"too few labeled reference rows with a prediction: {int(keep.sum())} "
                f"(need {MIN_REFERENCE_ROWS})"
            )
        x = design(features.loc[keep], yhat[keep])
        error = y[keep] - yhat[keep]
        with _one_thread():
            return cls(
                columns=list(features.columns),
                absolute=_ErrorModel.fit(x, np.abs(error), seed),
                squared=_ErrorModel.fit(x, error**2, seed + 1),
            )

    def estimate(
        self,
        features: pd.DataFrame,
        predictions: NDArray[np.float64],
        *,
        labels: NDArray[np.float64] | None = None,
        confidence: float = 0.95,
    ) -> Estimation:
        """Estimated MAE and RMSE of a window; with ``labels``, the realized values beside them."""
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise NotEstimableError(f"the window lacks the reference's columns {missing}")
        yhat = np.asarray(predictions, dtype=np.float64)
        keep = np.isfinite(yhat)
        if not keep.any():
            raise NotEstimableError("the window has no rows with a numeric prediction")
        x = design(features.loc[keep, self.columns], yhat[keep])
        z = float(norm.ppf(0.5 + confidence / 2))
        with _one_thread():
            mae = self.absolute.interval(x, z)
            mse = self.squared.interval(x, z)
        metrics = {
            "mae": Estimate(*mae),
            "rmse": Estimate(*(float(np.sqrt(v)) for v in mse)),
        }
        realized: dict[str, float] = {}
        if labels is not None:
            y = np.asarray(labels, dtype=np.float64)[keep]
            labeled = np.isfinite(y)
            if labeled.any():
                error = y[labeled] - yhat[keep][labeled]
                realized = {
                    "mae": float(np.abs(error).mean()),
                    "rmse": float(np.sqrt((error**2).mean())),
                }
        return Estimation("regression", int(keep.sum()), confidence, metrics, realized)
