"""Confidence-based performance estimation (CBPE) for classifiers, before labels arrive.

On the reference (scores and true labels) the scores are calibrated per class
(:mod:`.calibration`). On a production window the calibrated probability that a row belongs to
class ``k`` stands in for the unknown label, so the expected confusion matrix, and from it
accuracy, precision, recall and F1, are sums of probabilities; ROC AUC is the expected share of
correctly ordered positive/negative pairs. This assumes the relation between scores and labels
is the reference's (covariate shift, no concept shift): under concept shift the estimate is blind,
and the reconciliation with realized labels shows the gap.

The interval is that of the *realized* metric, normal with two variances added: the window's
sampling noise (the spread of the metric over labels drawn from the calibrated probabilities,
Monte Carlo) and the calibration's own uncertainty (the spread of the estimate over calibrations
refitted on bootstrap resamples of the reference).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import norm, rankdata

from driftloop.monitor.estimation.calibration import Calibration
from driftloop.monitor.estimation.result import Estimate, Estimation, NotEstimableError

MIN_REFERENCE_ROWS = 100
MIN_CLASS_ROWS = 10


def _class_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def sorted_classes(values: Sequence[Any]) -> list[Any]:
    """Class labels in the order score columns follow: sorted, mixed types by type then text."""
    unique = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in values))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=_class_key)


def _indices(values: Sequence[Any], classes: list[Any]) -> NDArray[np.int64]:
    """Class index of each value, -1 for a value that is not a known class."""
    found = pd.Index(classes).get_indexer(pd.Index(np.asarray(values)))
    return np.asarray(found, dtype=np.int64)


def _safe_ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _confusion_metrics(
    confusion: NDArray[np.float64], classes: list[Any], prefix_rows: float | None = None
) -> dict[str, NDArray[np.float64]]:
    """Accuracy, macro and per-class precision, recall and F1 from stacked confusion matrices
    ``(..., K, K)`` (true x predicted), possibly of expected counts."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    predicted = confusion.sum(axis=-2)
    actual = confusion.sum(axis=-1)
    rows = confusion.sum(axis=(-2, -1)) if prefix_rows is None else prefix_rows
    precision = _safe_ratio(tp, predicted)
    recall = _safe_ratio(tp, actual)
    f1 = _safe_ratio(2 * tp, predicted + actual)
    out: dict[str, NDArray[np.float64]] = {
        "accuracy": _safe_ratio(tp.sum(axis=-1), np.asarray(rows, dtype=np.float64)),
        "precision": precision.mean(axis=-1),
        "recall": recall.mean(axis=-1),
        "f1": f1.mean(axis=-1),
    }
    for k, label in enumerate(classes):
        out[f"precision:{label}"] = precision[..., k]
        out[f"recall:{label}"] = recall[..., k]
        out[f"f1:{label}"] = f1[..., k]
    return out


def _expected_auc(p: NDArray[np.float64], group: NDArray[np.intp]) -> float:
    """Expected ROC AUC when row ``i`` is a positive with probability ``p[i]`` and ``group[i]``
    is the rank of its score among the distinct scores: the expected number of correctly
    ordered positive/negative pairs over the expected number of pairs."""
    pos = np.bincount(group, weights=p)
    neg = np.bincount(group, weights=1.0 - p)
    below = np.cumsum(neg) - neg
    same = np.bincount(group, weights=p * (1.0 - p))
    pairs = p.sum() * (1.0 - p).sum() - same.sum()
    if pairs <= 0:
        return float("nan")
    return float((pos @ below + 0.5 * (pos @ neg - same.sum())) / pairs)


def _auc_of_draws(
    draws: NDArray[np.int64], ranks: NDArray[np.float64], k: int
) -> NDArray[np.float64]:
    """ROC AUC of class ``k`` against the rest, per draw of labels (rows of ``draws``), from the
    rank sum of the positives (Mann-Whitney). Summed element-wise, not by a matrix product:
    BLAS's threads spin on a busy machine and made this 20x slower (measured)."""
    positive = draws == k
    n = draws.shape[1]
    n1 = positive.sum(axis=1, dtype=np.float64)
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * (n - n1))


@dataclass(frozen=True)
class ClassificationEstimator:
    """CBPE fitted on a reference: the classes, the number of score columns, the calibration
    and its bootstrap replicas."""

    classes: list[Any]
    width: int
    calibration: Calibration
    replicas: tuple[Calibration, ...]

    @classmethod
    def fit(
        cls,
        scores: NDArray[np.float64],
        labels: Sequence[Any],
        *,
        classes: list[Any] | None = None,
        replicas: int = 12,
        seed: int = 0,
    ) -> ClassificationEstimator:
        """Calibrate on reference ``scores`` (n x K in the order of ``classes``, or n x 1 for the
        second of two classes) and true ``labels``. Raises :class:`NotEstimableError`."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] == 0:
            raise NotEstimableError("no scores: the model logs no class probabilities")
        if not np.isfinite(scores).all():
            raise NotEstimableError("the reference scores hold missing or infinite values")
        classes = sorted_classes(labels) if classes is None else list(classes)
        width = scores.shape[1]
        if width != len(classes) and not (width == 1 and len(classes) == 2):
            raise NotEstimableError(
                f"{width} score columns for {len(classes)} classes {classes}: give one score "
                "per class in the order of the sorted class labels"
            )
        y = _indices(labels, classes)
        if (y < 0).any():
            raise NotEstimableError("reference labels outside the model's classes")
        counts = np.bincount(y, minlength=len(classes))
        if len(y) < MIN_REFERENCE_ROWS or counts.min() < MIN_CLASS_ROWS:
            raise NotEstimableError(
                f"too few reference labels to calibrate: {len(y)} rows, per class "
                f"{dict(zip(map(str, classes), counts.tolist(), strict=True))} (need "
                f"{MIN_REFERENCE_ROWS} rows and {MIN_CLASS_ROWS} per class)"
            )
        rng = np.random.default_rng(seed)
        calibration = Calibration.fit(scores, y, rng)
        copies = tuple(
            calibration.refit(scores, y, rng.integers(0, len(y), len(y))) for _ in range(replicas)
        )
        return cls(classes=classes, width=width, calibration=calibration, replicas=copies)

    def _full_scores(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scores ranked per class: the binary column stands for both classes."""
        if len(self.classes) == 2:
            positive = Calibration.positive(scores)
            return np.column_stack([-positive, positive])
        return scores

    def metrics(
        self,
        labels: NDArray[np.int64],
        predicted: NDArray[np.int64],
        ranks: NDArray[np.float64],
    ) -> dict[str, NDArray[np.float64]]:
        """Realized metrics for each row of ``labels`` (draws x rows of class indices)."""
        k = len(self.classes)
        draws, n = labels.shape
        known = predicted >= 0
        cell = labels[:, known] * k + predicted[known] + (np.arange(draws) * k * k)[:, None]
        counts = np.bincount(cell.ravel(), minlength=draws * k * k).astype(np.float64)
        counts = counts.reshape(draws, k, k)
        out = _confusion_metrics(counts, self.classes, prefix_rows=float(n))
        if k == 2:
            out["roc_auc"] = _auc_of_draws(labels, ranks[:, 1], 1)
        else:
            aucs = np.column_stack([_auc_of_draws(labels, ranks[:, j], j) for j in range(k)])
            with warnings.catch_warnings():  # a draw may lack a class: its AUC is NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                out["roc_auc"] = np.nanmean(aucs, axis=1)
        return out

    def estimate(
        self,
        scores: NDArray[np.float64],
        predictions: Sequence[Any],
        *,
        labels: Sequence[Any] | None = None,
        confidence: float = 0.95,
        draws: int = 150,
        seed: int = 0,
    ) -> Estimation:
        """Estimated metrics of a window from its scores and predicted classes; with ``labels``,
        the realized metrics beside them."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != self.width:
            raise NotEstimableError(
                f"the window has {scores.shape[-1] if scores.ndim == 2 else 0} score columns, "
                f"the reference {self.width}"
            )
        n = len(scores)
        if n == 0:
            raise NotEstimableError("the window has no rows")
        predicted = _indices(predictions, self.classes)
        full = self._full_scores(scores)
        ranks = np.column_stack([rankdata(full[:, j]) for j in range(full.shape[1])])
        groups = [np.unique(full[:, j], return_inverse=True)[1] for j in range(full.shape[1])]
        probabilities = self.calibration.probabilities(scores)
        point = self._plug_in(probabilities, predicted, groups)
        # Calibration uncertainty: the spread of the estimate over the bootstrap calibrations.
        replicas = [
            self._plug_in(c.probabilities(scores), predicted, groups) for c in self.replicas
        ]
        # Sampling noise: the realized metric of labels drawn from the calibrated probabilities.
        drawn = self._draw(probabilities, draws, np.random.default_rng(seed))
        sampled = self.metrics(drawn, predicted, ranks)
        z = float(norm.ppf(0.5 + confidence / 2))
        metrics = {}
        for name, value in point.items():
            noise = sampled[name][np.isfinite(sampled[name])]
            spread = np.array([r[name] for r in replicas])
            spread = spread[np.isfinite(spread)]
            if noise.size < 2 or not np.isfinite(value):
                metrics[name] = Estimate(value, None, None)
                continue
            variance = noise.var(ddof=1) + (spread.var(ddof=1) if spread.size > 1 else 0.0)
            half = z * float(np.sqrt(variance))
            metrics[name] = Estimate(value, max(value - half, 0.0), min(value + half, 1.0))
        realized: dict[str, float] = {}
        if labels is not None:
            truth = _indices(labels, self.classes)
            keep = truth >= 0
            if keep.any():
                got = self.metrics(truth[keep][None, :], predicted[keep], ranks[keep])
                realized = {name: float(v[0]) for name, v in got.items()}
        return Estimation("classification", n, confidence, metrics, realized)

    @staticmethod
    def _draw(p: NDArray[np.float64], draws: int, rng: np.random.Generator) -> NDArray[np.int64]:
        """``draws`` x rows of class indices drawn from the rows' probabilities ``p``."""
        u = rng.random((draws, len(p)))
        if p.shape[1] == 2:
            return (u < p[:, 1]).astype(np.int64)
        cumulative = np.cumsum(p, axis=1)
        cumulative[:, -1] = 1.0
        return (u[:, :, None] > cumulative[None, :, :]).sum(axis=2, dtype=np.int64)

    def _plug_in(
        self, p: NDArray[np.float64], predicted: NDArray[np.int64], groups: list[NDArray[np.intp]]
    ) -> dict[str, float]:
        """The CBPE point estimates: metrics of the expected confusion matrix, expected AUC
        (``groups``: each row's tie group in the ranking of each class's score)."""
        k = len(self.classes)
        known = predicted >= 0
        confusion = np.zeros((k, k))
        for j in range(k):
            confusion[:, j] = p[known & (predicted == j)].sum(axis=0)
        out = {
            name: float(v)
            for name, v in _confusion_metrics(confusion, self.classes, float(len(p))).items()
        }
        if k == 2:
            out["roc_auc"] = _expected_auc(p[:, 1], groups[1])
        else:
            out["roc_auc"] = float(
                np.nanmean([_expected_auc(p[:, j], groups[j]) for j in range(k)])
            )
        return out
