"""Calibration of a classifier's scores on the reference: one isotonic map per class.

Each class's score is mapped to the observed frequency of that class among reference rows with
similar scores (pool-adjacent-violators through :func:`scipy.optimize.isotonic_regression`); the
map is kept only when it beats the raw score out of fold (Brier score, five folds), so scores that
are calibrated already are left alone. Rows of calibrated probabilities are renormalised to sum 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import isotonic_regression
from scipy.special import expit

FOLDS = 5
RIDGE = 1.0


@dataclass(frozen=True)
class IsotonicMap:
    """A non-decreasing piecewise-linear map from a score to a probability."""

    knots: NDArray[np.float64]
    values: NDArray[np.float64]

    @classmethod
    def fit(cls, scores: NDArray[np.float64], outcome: NDArray[np.float64]) -> IsotonicMap:
        """Fit on ``scores`` and 0/1 ``outcome`` (ties in the score pooled first)."""
        return _Sorted(scores).isotonic(outcome, np.ones(len(scores)))

    @classmethod
    def pooled(
        cls,
        knots: NDArray[np.float64],
        counts: NDArray[np.float64],
        positives: NDArray[np.float64],
    ) -> IsotonicMap:
        """Fit on distinct sorted ``knots`` with the (weighted) number of rows at each and how
        many of them had the outcome; knots without rows are left out."""
        present = counts > 0
        knots, counts, positives = knots[present], counts[present], positives[present]
        means = positives / counts
        fitted = np.clip(isotonic_regression(means, weights=counts).x, 0, 1)
        # Only the ends of each constant block matter to the interpolation.
        change = np.flatnonzero(np.diff(fitted)) if len(fitted) > 1 else np.array([], int)
        keep = np.unique(np.concatenate([[0, len(fitted) - 1], change, change + 1]))
        return cls(knots=knots[keep], values=fitted[keep])

    def __call__(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(scores, self.knots, self.values)


@dataclass(frozen=True)
class LogisticMap:
    """``sigmoid(a + b * logit(score))``: Platt's recalibration of a score that was kept as it is,
    used for the bootstrap replicas, so a calibration judged right still carries its uncertainty."""

    a: float
    b: float

    @classmethod
    def fit(
        cls,
        scores: NDArray[np.float64],
        outcome: NDArray[np.float64],
        weights: NDArray[np.float64] | None = None,
    ) -> LogisticMap:
        """Maximum likelihood by Newton's method from the identity (a=0, b=1), with a weak ridge
        towards it so that separable data (a perfect classifier) stays finite. ``weights``
        count each row (a bootstrap resample's multiplicities); sums are taken element-wise,
        not by BLAS, whose threads spin on a busy machine."""
        z = _logit(scores)
        rows = np.ones_like(z) if weights is None else weights
        identity = np.array([0.0, 1.0])
        theta = identity.copy()
        for _ in range(25):
            p = expit(theta[0] + theta[1] * z)
            w = rows * p * (1.0 - p)
            wz = w * z
            hessian = np.array([[w.sum(), wz.sum()], [wz.sum(), (wz * z).sum()]])
            hessian += RIDGE * np.eye(2)
            residual = rows * (outcome - p)
            gradient = np.array([residual.sum(), (residual * z).sum()])
            gradient -= RIDGE * (theta - identity)
            step = np.linalg.solve(hessian, gradient)
            theta = theta + step
            if np.abs(step).max() < 1e-8:
                break
        return cls(a=float(theta[0]), b=float(theta[1]))

    def __call__(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        return expit(self.a + self.b * _logit(scores))


def _logit(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(scores, 1e-6, 1.0 - 1e-6)
    return np.log(p / (1.0 - p))


ScoreMap = IsotonicMap | LogisticMap


class _Sorted:
    """A reference score column sorted once: its distinct values and each row's among them, so
    that isotonic fits on folds and bootstrap resamples only re-weight the rows."""

    def __init__(self, scores: NDArray[np.float64]) -> None:
        self.scores = scores
        self.knots, self.inverse = np.unique(scores, return_inverse=True)

    def isotonic(self, outcome: NDArray[np.float64], weights: NDArray[np.float64]) -> IsotonicMap:
        """The isotonic map of the rows counted ``weights`` times each."""
        size = len(self.knots)
        counts = np.bincount(self.inverse, weights=weights, minlength=size).astype(
            np.float64, copy=False
        )
        positives = np.bincount(self.inverse, weights=weights * outcome, minlength=size)
        return IsotonicMap.pooled(self.knots, counts, positives.astype(np.float64, copy=False))


def _brier(p: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.mean((p - y) ** 2))


def _choose(
    column: _Sorted, outcome: NDArray[np.float64], rng: np.random.Generator
) -> IsotonicMap | None:
    """The isotonic map when it beats the raw score out of fold, else ``None`` (identity)."""
    scores = column.scores
    folds = rng.permutation(len(scores)) % FOLDS
    out_of_fold = np.empty_like(scores)
    for fold in range(FOLDS):
        test = folds == fold
        fitted = column.isotonic(outcome, (~test).astype(np.float64))
        out_of_fold[test] = fitted(scores[test])
    if _brier(out_of_fold, outcome) < _brier(np.clip(scores, 0.0, 1.0), outcome):
        return column.isotonic(outcome, np.ones(len(scores)))
    return None


def _fit_like(
    chosen: ScoreMap | None,
    column: _Sorted,
    outcome: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> ScoreMap:
    """A replica of ``chosen`` fitted on rows counted ``weights`` times each: isotonic again,
    or, for a score that was kept as it is, a logistic recalibration around the identity."""
    if isinstance(chosen, IsotonicMap):
        return column.isotonic(outcome, weights)
    return LogisticMap.fit(column.scores, outcome, weights)


@dataclass(frozen=True)
class Calibration:
    """Maps from a classifier's scores to class probabilities.

    Two classes: one map on the second class's score. More classes: a map per class (each
    kept only where it helps), and a *top-label* map from the highest score to the chance
    that the top class is right, which every reference row informs, so accuracy stays well
    calibrated with few rows per class; the other classes share the rest in proportion to
    their class-wise probabilities (Gupta and Ramdas, top-label calibration).
    """

    maps: tuple[ScoreMap | None, ...]
    top: ScoreMap | None
    classes: int

    @staticmethod
    def positive(scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """The second class's score of a binary model (one column, or the second of two)."""
        return scores[:, -1]

    @staticmethod
    def _columns(
        scores: NDArray[np.float64], labels: NDArray[np.int64], k: int
    ) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """The score and 0/1 outcome each map is fitted on: the second class's score for two
        classes; else each class's score, then the top score and whether the top was right."""
        if k == 2:
            return [(Calibration.positive(scores), (labels == 1).astype(np.float64))]
        columns = [(scores[:, j], (labels == j).astype(np.float64)) for j in range(k)]
        correct = (scores.argmax(axis=1) == labels).astype(np.float64)
        return [*columns, (scores.max(axis=1), correct)]

    @classmethod
    def fit(
        cls, scores: NDArray[np.float64], labels: NDArray[np.int64], rng: np.random.Generator
    ) -> Calibration:
        """Fit on reference ``scores`` (n x K, or n x 1 for a binary model) and class indices."""
        return cls.fit_with_replicas(scores, labels, rng, 0)[0]

    @classmethod
    def fit_with_replicas(
        cls,
        scores: NDArray[np.float64],
        labels: NDArray[np.int64],
        rng: np.random.Generator,
        replicas: int,
    ) -> tuple[Calibration, tuple[Calibration, ...]]:
        """The calibration and ``replicas`` bootstrap replicas of it (the same choices of map
        refitted on resamples of the reference), each score column sorted once for all."""
        k = max(scores.shape[1], 2)
        columns = [(_Sorted(s), y) for s, y in cls._columns(scores, labels, k)]
        chosen = [_choose(column, y, rng) for column, y in columns]
        calibration = cls._assemble(chosen, k)
        copies = []
        for _ in range(replicas):
            weights = np.bincount(rng.integers(0, len(labels), len(labels)), minlength=len(labels))
            w = weights.astype(np.float64)
            maps = [
                _fit_like(m, column, y, w) for m, (column, y) in zip(chosen, columns, strict=True)
            ]
            copies.append(cls._assemble(maps, k))
        return calibration, tuple(copies)

    @classmethod
    def _assemble(cls, maps: Sequence[ScoreMap | None], k: int) -> Calibration:
        if k == 2:
            return cls(maps=(maps[0],), top=None, classes=2)
        return cls(maps=tuple(maps[:k]), top=maps[k], classes=k)

    def refit(
        self, scores: NDArray[np.float64], labels: NDArray[np.int64], rows: NDArray[np.int64]
    ) -> Calibration:
        """The same choices of map, refitted on reference ``rows`` (a bootstrap resample)."""
        weights = np.bincount(rows, minlength=len(labels)).astype(np.float64)
        columns = self._columns(scores, labels, self.classes)
        chosen = [*self.maps, self.top] if self.classes > 2 else [self.maps[0]]
        maps = [
            _fit_like(m, _Sorted(s), y, weights) for m, (s, y) in zip(chosen, columns, strict=True)
        ]
        return self._assemble(maps, self.classes)

    def probabilities(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated class probabilities, n x K with rows summing to 1."""
        return Stack((self,)).probabilities(scores)[0]


class _Slot:
    """One map of every calibration of a stack, evaluated together: isotonic maps through the
    union of their knots (exact: each is linear between its own knots), a score kept as it is
    (the first calibration) beside its logistic replicas in one vectorised expression."""

    def __init__(self, maps: list[ScoreMap | None]) -> None:
        self.size = len(maps)
        self.grid: NDArray[np.float64] | None = None
        self.identity = [i for i, m in enumerate(maps) if m is None]
        self.logistic = [i for i, m in enumerate(maps) if isinstance(m, LogisticMap)]
        self.isotonic = [i for i, m in enumerate(maps) if isinstance(m, IsotonicMap)]
        a = [m.a for m in maps if isinstance(m, LogisticMap)]
        b = [m.b for m in maps if isinstance(m, LogisticMap)]
        self.a, self.b = np.array(a)[:, None], np.array(b)[:, None]
        isotonic = [m for m in maps if isinstance(m, IsotonicMap)]
        if isotonic:
            self.grid = np.unique(np.concatenate([m.knots for m in isotonic]))
            self.values = np.stack([m(self.grid) for m in isotonic])

    def __call__(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Stack x rows of probabilities."""
        out = np.empty((self.size, len(scores)))
        if self.identity:
            out[self.identity] = np.clip(scores, 0.0, 1.0)
        if self.logistic:
            out[self.logistic] = expit(self.a + self.b * _logit(scores))
        if self.grid is not None:
            grid = self.grid
            if len(grid) == 1:
                out[self.isotonic] = self.values[:, :1]
            else:
                x = np.clip(scores, grid[0], grid[-1])
                right = np.clip(np.searchsorted(grid, x, side="right"), 1, len(grid) - 1)
                left = right - 1
                step = (x - grid[left]) / (grid[right] - grid[left])
                v = self.values
                out[self.isotonic] = v[:, left] + (v[:, right] - v[:, left]) * step
        return out


class Stack:
    """Several calibrations of one model (the fitted one and its bootstrap replicas) applied to
    a window at once: each map slot evaluates all of them in a few array operations."""

    def __init__(self, calibrations: tuple[Calibration, ...]) -> None:
        self.classes = calibrations[0].classes
        self.slots = [
            _Slot([c.maps[j] for c in calibrations]) for j in range(len(calibrations[0].maps))
        ]
        self.top = None if self.classes == 2 else _Slot([c.top for c in calibrations])

    def probabilities(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated class probabilities, stack x n x K with rows summing to 1."""
        if self.classes == 2:
            p1 = self.slots[0](Calibration.positive(scores))
            return np.stack([1.0 - p1, p1], axis=-1)
        p = np.stack([slot(scores[:, j]) for j, slot in enumerate(self.slots)], axis=-1)
        assert self.top is not None
        n = len(scores)
        top = scores.argmax(axis=1)
        rows = np.arange(n)
        top_p = self.top(scores.max(axis=1))  # stack x n
        if self.top.identity:  # no top-label map: the top class's own map
            top_p[self.top.identity] = p[self.top.identity][:, rows, top]
        total_top = np.clip(top_p, 0.0, 1.0)
        p[:, rows, top] = 0.0
        rest = p.sum(axis=2, keepdims=True)
        share = np.full_like(p, 1.0 / (self.classes - 1))
        share[:, rows, top] = 0.0
        np.divide(p, rest, out=share, where=rest > 0)
        p = share * (1.0 - total_top)[:, :, None]
        p[:, rows, top] = total_top
        return p
