"""Calibration of a classifier's scores on the reference: one isotonic map per class.

Each class's score is mapped to the observed frequency of that class among reference rows with
similar scores (pool-adjacent-violators through :func:`scipy.optimize.isotonic_regression`); the
map is kept only when it beats the raw score out of fold (Brier score, five folds), so scores that
are calibrated already are left alone. Rows of calibrated probabilities are renormalised to sum 1.
"""

from __future__ import annotations

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
        knots, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=outcome, minlength=len(knots)) / counts
        fitted = np.clip(isotonic_regression(means, weights=counts.astype(np.float64)).x, 0, 1)
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
    def fit(cls, scores: NDArray[np.float64], outcome: NDArray[np.float64]) -> LogisticMap:
        """Maximum likelihood by Newton's method from the identity (a=0, b=1), with a weak ridge
        towards it so that separable data (a perfect classifier) stays finite."""
        z = _logit(scores)
        design = np.column_stack([np.ones_like(z), z])
        identity = np.array([0.0, 1.0])
        theta = identity.copy()
        for _ in range(25):
            p = expit(design @ theta)
            w = p * (1.0 - p)
            hessian = design.T @ (design * w[:, None]) + RIDGE * np.eye(2)
            gradient = design.T @ (outcome - p) - RIDGE * (theta - identity)
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


def _brier(p: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.mean((p - y) ** 2))


def _choose(
    scores: NDArray[np.float64], outcome: NDArray[np.float64], rng: np.random.Generator
) -> IsotonicMap | None:
    """The isotonic map when it beats the raw score out of fold, else ``None`` (identity)."""
    folds = rng.permutation(len(scores)) % FOLDS
    out_of_fold = np.empty_like(scores)
    for fold in range(FOLDS):
        test = folds == fold
        out_of_fold[test] = IsotonicMap.fit(scores[~test], outcome[~test])(scores[test])
    if _brier(out_of_fold, outcome) < _brier(np.clip(scores, 0.0, 1.0), outcome):
        return IsotonicMap.fit(scores, outcome)
    return None


def _fit_like(
    chosen: ScoreMap | None, scores: NDArray[np.float64], outcome: NDArray[np.float64]
) -> ScoreMap:
    """A replica of ``chosen`` fitted on other rows: isotonic again, or, for a score that was
    kept as it is, a logistic recalibration around the identity."""
    if isinstance(chosen, IsotonicMap):
        return IsotonicMap.fit(scores, outcome)
    return LogisticMap.fit(scores, outcome)


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

    @classmethod
    def fit(
        cls, scores: NDArray[np.float64], labels: NDArray[np.int64], rng: np.random.Generator
    ) -> Calibration:
        """Fit on reference ``scores`` (n x K, or n x 1 for a binary model) and class indices."""
        k = max(scores.shape[1], 2)
        if k == 2:
            positive = (labels == 1).astype(np.float64)
            return cls(maps=(_choose(cls.positive(scores), positive, rng),), top=None, classes=2)
        maps = tuple(_choose(scores[:, j], (labels == j).astype(np.float64), rng) for j in range(k))
        correct = (scores.argmax(axis=1) == labels).astype(np.float64)
        return cls(maps=maps, top=_choose(scores.max(axis=1), correct, rng), classes=k)

    def refit(
        self, scores: NDArray[np.float64], labels: NDArray[np.int64], rows: NDArray[np.int64]
    ) -> Calibration:
        """The same choices of map, refitted on reference ``rows`` (a bootstrap resample)."""
        s, y = scores[rows], labels[rows]
        if self.classes == 2:
            positive = (y == 1).astype(np.float64)
            return Calibration((_fit_like(self.maps[0], self.positive(s), positive),), None, 2)
        maps = tuple(
            _fit_like(m, s[:, j], (y == j).astype(np.float64)) for j, m in enumerate(self.maps)
        )
        correct = (s.argmax(axis=1) == y).astype(np.float64)
        return Calibration(maps, _fit_like(self.top, s.max(axis=1), correct), self.classes)

    def probabilities(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated class probabilities, n x K with rows summing to 1."""
        if self.classes == 2:
            raw = np.clip(self.positive(scores), 0.0, 1.0)
            p1 = raw if self.maps[0] is None else self.maps[0](self.positive(scores))
            return np.column_stack([1.0 - p1, p1])
        p = np.column_stack(
            [
                np.clip(scores[:, j], 0.0, 1.0) if m is None else m(scores[:, j])
                for j, m in enumerate(self.maps)
            ]
        )
        n = len(p)
        top = scores.argmax(axis=1)
        rows = np.arange(n)
        top_p = p[rows, top] if self.top is None else self.top(scores.max(axis=1))
        p[rows, top] = 0.0
        rest = p.sum(axis=1)
        share = np.full_like(p, 1.0 / (self.classes - 1))
        share[rows, top] = 0.0
        np.divide(p, rest[:, None], out=share, where=rest[:, None] > 0)
        total_top = np.clip(top_p, 0.0, 1.0)
        p = share * (1.0 - total_top)[:, None]
        p[rows, top] = total_top
        return p
