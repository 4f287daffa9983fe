"""Direct loss estimation (DLE) for regressors, before labels arrive.

On the reference, a small additive model learns the absolute and the squared error of the model
from its inputs and its prediction; on a production window the mean of the predicted errors
estimates MAE and MSE (RMSE is its square root). Each input is cut into up to ``BINS`` bins
(quantiles of the reference for numbers, the most frequent values for other columns, a bin of its
own for missing or unseen values; fewer per input when there are many inputs, ``BUDGET`` in all)
and the error is a sum of one learned value per input's bin, smoothed between neighbouring bins:
penalised least squares on the one-hot bins, solved in closed form from their co-occurrence
counts (one small Cholesky factorisation per fit serves every target). It
sees how the error moves with each input and with the prediction, not interactions between
inputs; on scikit-learn's Friedman data it tracks MAE and RMSE as closely as gradient-boosted
trees did, at a hundredth of the cost (docs/benchmarks.md).

Out-of-fold residuals of those error models give each row's variance around its predicted error
(a second additive model), so the interval is that of the realized metric on a window of this
size, plus the error models' own bias measured out of fold. Like CBPE it assumes covariate shift
only: under concept shift the estimate is blind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtri

from driftloop.monitor.estimation.result import Estimate, Estimation, NotEstimableError

MIN_REFERENCE_ROWS = 100
FOLDS = 2
BINS = 32
"""Bins per input (numbers: quantiles of the reference; other columns: most frequent values)."""
BUDGET = 2048
"""Bins of all inputs together, so the linear system stays bounded (a 2,048 x 2,048 Cholesky
factorisation takes ~0.3 s on one thread). Past ~60 inputs, the 31 along which the error varies
most keep ``BINS`` and the others get fewer (at least ``MIN_BINS``)."""
MIN_BINS = 4
GRAM_CELLS = 2_000_000
"""Pairs of bins counted at once when building the co-occurrence matrix (bounds the memory of a
wide reference: 16 MB)."""
SMOOTHING = 300.0
"""Penalty on the squared difference between neighbouring bins of a number (in rows)."""
RIDGE = 1.0
"""Penalty on each bin's value, so a bin with few rows stays near the mean."""


@cache
def _threads() -> Any:
    """BLAS libraries loaded by NumPy and SciPy, found once (finding them takes ~10 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Factorise on one thread: OpenBLAS's spinning workers made a 300 x 300 Cholesky
    factorisation 500x slower on a busy two-core machine (0.3 ms alone, 200 ms loaded;
    measured), and the matrices are small. Without threadpoolctl (it comes with scikit-learn,
    which DLE no longer needs) BLAS keeps its own thread count."""
    try:
        controller = _threads()
    except ImportError:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


def _numbers(column: pd.Series) -> NDArray[np.float64]:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


@dataclass(frozen=True)
class _Bins:
    """How the inputs are cut into bins: each number column (and the prediction, last) at
    inner quantiles of the reference, ``edges[j]`` (bins ``0..len(edges[j])``, then one for
    missing values); each other column by its most frequent values, ``categories[name]`` (one
    bin each, then one for any other value). Codes count from each input's offset, so one
    row's codes index one vector of all inputs' bins."""

    numbers: list[str]
    edges: list[NDArray[np.float64]]
    categories: dict[str, pd.Index]

    @property
    def sizes(self) -> list[int]:
        return [len(e) + 2 for e in self.edges] + [len(c) + 1 for c in self.categories.values()]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    @staticmethod
    def _block(
        frame: pd.DataFrame, numbers: list[str], predictions: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The number columns and the prediction as one float matrix (one pandas call where
        the frame allows it: a column at a time costs pandas ~0.1 ms each)."""
        if not numbers:
            return np.asarray(predictions, dtype=np.float64)[:, None]
        try:
            part = frame if list(frame.columns) == numbers else frame[numbers]
            block = part.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):  # text where the reference had numbers
            block = np.column_stack([_numbers(frame[n]) for n in numbers])
        return np.column_stack([block, predictions])

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, predictions: NDArray[np.float64], error: NDArray[np.float64]
    ) -> _Bins:
        """``BINS`` per input; past ``BUDGET`` in all, the inputs along which the model's
        absolute ``error`` varies most (between-bin sum of squares) keep them, half the budget,
        and the others share the rest (at least ``MIN_BINS`` each, their cuts a subset of the
        fine ones)."""
        numbers = [n for n in frame.columns if _is_number(frame[n])]
        block = cls._block(frame, numbers, predictions)
        inner = np.linspace(0.0, 1.0, BINS + 1)[1:-1]
        if np.isfinite(block).all():
            cuts = list(np.quantile(block, inner, axis=0).T)
        else:
            cuts = [
                np.quantile(c[np.isfinite(c)], inner) if np.isfinite(c).any() else np.empty(0)
                for c in block.T
            ]
        ranked = {
            n: frame[n].astype(str).value_counts().index for n in frame.columns if n not in numbers
        }
        fine = cls(
            numbers,
            [np.unique(c) for c in cuts],
            {n: pd.Index(values[: BINS - 1]) for n, values in ranked.items()},
        )
        if fine.size <= BUDGET:
            return fine
        counts = fine._allocate(frame, predictions, error)
        edges = [
            np.unique(c[np.round(np.linspace(0, BINS, b + 1)[1:-1]).astype(int) - 1])
            if len(c)
            else c
            for c, b in zip(cuts, counts, strict=False)
        ]
        categories = {
            n: pd.Index(values[: b - 1])
            for (n, values), b in zip(ranked.items(), counts[len(cuts) :], strict=True)
        }
        return cls(numbers, edges, categories)

    def _allocate(
        self, frame: pd.DataFrame, predictions: NDArray[np.float64], error: NDArray[np.float64]
    ) -> list[int]:
        """Bins per input (in the order of the codes' columns) within ``BUDGET``."""
        codes = self.codes(frame, predictions)
        flat, size = codes.ravel(), self.size
        count = np.bincount(flat, minlength=size)
        total = np.bincount(flat, weights=np.repeat(error, codes.shape[1]), minlength=size)
        mean = total / np.maximum(count, 1)
        spread = count * (mean - error.mean()) ** 2
        explained = np.add.reduceat(spread, np.cumsum([0, *self.sizes[:-1]]))
        inputs = len(explained)
        top = max(1, (BUDGET // 2) // (BINS + 1))
        rest = max(inputs - top, 1)
        coarse = max(MIN_BINS, min(BINS, (BUDGET - top * (BINS + 1)) // rest - 1))
        out = np.full(inputs, coarse)
        out[np.argsort(-explained, kind="stable")[:top]] = BINS
        return [int(b) for b in out]

    def codes(self, frame: pd.DataFrame, predictions: NDArray[np.float64]) -> NDArray[np.int64]:
        """Rows x inputs bin codes, each counted from its input's offset."""
        block = self._block(frame, self.numbers, predictions)
        out = np.empty((len(frame), len(self.edges) + len(self.categories)), dtype=np.int64)
        offset = 0
        for j, edges in enumerate(self.edges):
            code = np.searchsorted(edges, block[:, j], side="right")
            code[np.isnan(block[:, j])] = len(edges) + 1
            out[:, j] = code + offset
            offset += len(edges) + 2
        for j, (name, known) in enumerate(self.categories.items(), start=len(self.edges)):
            code = known.get_indexer(frame[name].astype(str).to_numpy())
            code[code < 0] = len(known)
            out[:, j] = code + offset
            offset += len(known) + 1
        return out

    def penalty(self) -> NDArray[np.float64]:
        """Ridge on every bin, and neighbouring bins of a number pulled together (a squared
        difference penalty, the missing-value bin apart)."""
        out = RIDGE * np.eye(self.size)
        offset = 0
        for edges in self.edges:
            ordered = len(edges) + 1  # D'D of first differences: tridiagonal, written out
            inner = np.arange(offset, offset + ordered)
            diagonal = np.full(ordered, 2.0)
            diagonal[0] -= 1.0
            diagonal[-1] -= 1.0  # one bin alone: 0, no neighbour
            out[inner, inner] += SMOOTHING * diagonal
            out[inner[1:], inner[:-1]] -= SMOOTHING
            out[inner[:-1], inner[1:]] -= SMOOTHING
            offset += ordered + 1
        return out


def _gram(codes: NDArray[np.int64], size: int) -> NDArray[np.float64]:
    """``X'X`` of the one-hot bins: how often each pair of bins occurs in one row."""
    upper = np.triu_indices(codes.shape[1], 1)
    step = max(1, GRAM_CELLS // max(len(upper[0]), 1))  # rows at a time: bounded memory
    counts = np.zeros(size * size, dtype=np.int64)
    for start in range(0, len(codes), step):
        part = codes[start : start + step]
        pairs = (part[:, upper[0]] * size + part[:, upper[1]]).ravel()
        counts += np.bincount(pairs, minlength=size * size)
    gram = counts.reshape(size, size).astype(np.float64)
    gram += gram.T
    gram[np.diag_indices(size)] += np.bincount(codes.ravel(), minlength=size)
    return gram


def _solve(
    system: NDArray[np.float64], codes: NDArray[np.int64], targets: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The intercepts (target means) and bin values (size x targets) of the additive models;
    ``system`` is the co-occurrence counts plus the penalty, factorised in place (overwritten)."""
    means = targets.mean(axis=0)
    width = codes.shape[1]
    rhs = np.column_stack(
        [
            np.bincount(codes.ravel(), weights=np.repeat(t, width), minlength=len(system))
            for t in (targets - means).T
        ]
    )
    with _one_thread():
        values = cho_solve(cho_factor(system, overwrite_a=True, check_finite=False), rhs)
    return means, values


@dataclass(frozen=True)
class RegressionEstimator:
    """DLE fitted on a reference: the bins of each input and four additive models (absolute
    error, squared error, and the variance of each around its prediction)."""

    columns: list[str]
    bins: _Bins
    means: NDArray[np.float64]
    """Intercepts of the four models: |error|, error², and their residual variances."""
    values: NDArray[np.float64]
    """Bin values (bins x 4) of the four models."""
    bias_se: NDArray[np.float64]
    """Standard error of the mean |error| and error² models, out of fold."""

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
        frame = features if keep.all() else features.loc[keep]
        error = y[keep] - yhat[keep]
        bins = _Bins.fit(frame, yhat[keep], np.abs(error))
        codes = bins.codes(frame, yhat[keep])
        size, penalty = bins.size, bins.penalty()
        targets = np.column_stack([np.abs(error), error**2])
        # Out-of-fold predictions of the error: honest residuals for the variance and the bias.
        folds = np.random.default_rng(seed).permutation(len(error)) % FOLDS
        grams = [_gram(codes[folds == fold], size) for fold in range(FOLDS)]
        gram = sum(grams[1:], grams[0])
        out_of_fold = np.empty_like(targets)
        for fold in range(FOLDS):
            test = folds == fold
            system = gram - grams[fold]
            system += penalty
            means, values = _solve(system, codes[~test], targets[~test])
            out_of_fold[test] = means + values[codes[test]].sum(axis=1)
        residual = targets - out_of_fold
        del grams
        gram += penalty  # the last use of both
        means, values = _solve(gram, codes, np.column_stack([targets, residual**2]))
        return cls(
            columns=list(features.columns),
            bins=bins,
            means=means,
            values=values,
            bias_se=residual.std(axis=0, ddof=1) / np.sqrt(len(error)),
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
        frame = features if keep.all() else features.loc[keep]
        codes = self.bins.codes(frame, yhat[keep])
        predicted = self.means + self.values[codes].sum(axis=1)  # rows x 4
        n = len(codes)
        z = float(ndtri(0.5 + confidence / 2))
        bounds = []
        for kind in range(2):
            # The window's mean clipped, not each row's: a row's prediction is noisy (bins of
            # inputs that do not matter), and clipping each at 0 biased low errors upwards.
            center = max(float(predicted[:, kind].mean()), 0.0)
            variance = float(np.clip(predicted[:, 2 + kind], 0.0, None).sum()) / n**2
            half = z * float(np.sqrt(variance + self.bias_se[kind] ** 2))
            bounds.append((center, max(center - half, 0.0), center + half))
        metrics = {
            "mae": Estimate(*bounds[0]),
            "rmse": Estimate(*(float(np.sqrt(v)) for v in bounds[1])),
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
        return Estimation("regression", n, confidence, metrics, realized)
