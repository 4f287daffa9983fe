"""Confidence-based performance estimation (CBPE) for classifiers, before labels arrive.

On the reference (scores and true labels) the scores are calibrated per class
(:mod:`.calibration`). On a production window the calibrated probability that a row belongs to
class ``k`` stands in for the unknown label, so the expected confusion matrix, and from it
accuracy, precision, recall and F1, are sums of probabilities; ROC AUC is the expected share of
correctly ordered positive/negative pairs. This assumes the relation between scores and labels
is the reference's (covariate shift, no concept shift): under concept shift the estimate is blind,
and the reconciliation with realized labels shows the gap.

The interval is that of the *realized* metric, normal with two variances added: the window's
sampling noise and the calibration's own uncertainty (the spread of the estimate over calibrations
refitted on bootstrap resamples of the reference, all evaluated at once as a stack). The sampling
noise is the variance of the metric when each row's label is drawn from its calibrated
probabilities, by the delta method: every metric is a smooth function of sums over rows (the
confusion matrix's cells; for ROC AUC the rank sum of the positives and their count), so it moves
with each row's label through its gradient, and the rows are independent. The same variance by
Monte Carlo (``draws`` label sets) is kept as an option and as a check on it (tests).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import ndtri

from driftloop.monitor.estimation.calibration import Calibration, Stack
from driftloop.monitor.estimation.result import Estimate, Estimation, NotEstimableError

MIN_REFERENCE_ROWS = 100
MIN_CLASS_ROWS = 10


def _class_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def sorted_classes(values: Sequence[Any]) -> list[Any]:
    """Class labels in the order score columns follow: sorted, mixed types by type then text."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        unique = np.unique(values).tolist()  # Python numbers, without a loop over the rows
    else:
        distinct = pd.unique(np.asarray(values, dtype=object).ravel())
        unique = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in distinct))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=_class_key)


def _indices(values: Sequence[Any], classes: list[Any]) -> NDArray[np.int64]:
    """Class index of each value, -1 for a value that is not a known class."""
    array = np.asarray(values)
    if array.dtype.kind in "iu" and all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes
    ):
        # Integer labels: a search in the sorted classes, without building pandas indexes.
        known = np.asarray(classes, dtype=np.int64)
        order = np.argsort(known)
        at = np.clip(np.searchsorted(known[order], array), 0, len(known) - 1)
        return np.where(known[order][at] == array, order[at], -1).astype(np.int64)
    found = pd.Index(classes).get_indexer(pd.Index(array))
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


def _ties(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp], int]:
    """Average ranks (1-based, ties sharing their mean rank), each value's tie group (the rank of
    its distinct value) and the number of groups, from one sort."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(n, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, n))
    groups = np.empty(n, dtype=np.intp)
    groups[order] = np.cumsum(first) - 1
    ranks = (starts + (sizes + 1) / 2.0)[groups]
    return ranks, groups, len(starts)


def _expected_auc(
    p: NDArray[np.float64], groups: NDArray[np.intp], count: int
) -> NDArray[np.float64]:
    """Expected ROC AUC per row of ``p`` (stacked calibrations x rows) when row ``i`` is a
    positive with probability ``p[:, i]`` and ``groups[i]`` is the rank of its score among the
    ``count`` distinct scores: the expected number of correctly ordered positive/negative pairs
    over the expected number of pairs."""
    stack = p.shape[0]
    cells = (np.arange(stack)[:, None] * count + groups[None, :]).ravel()
    pos = np.bincount(cells, weights=p.ravel(), minlength=stack * count).reshape(stack, count)
    neg = np.bincount(cells, weights=(1.0 - p).ravel(), minlength=stack * count)
    neg = neg.reshape(stack, count)
    below = np.cumsum(neg, axis=1) - neg
    same = (p * (1.0 - p)).sum(axis=1)
    pairs = p.sum(axis=1) * (1.0 - p).sum(axis=1) - same
    correct = (pos * below).sum(axis=1) + 0.5 * ((pos * neg).sum(axis=1) - same)
    return _safe_ratio(correct, pairs) + np.where(pairs > 0, 0.0, np.nan)


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
        calibration, copies = Calibration.fit_with_replicas(scores, y, rng, replicas)
        return cls(classes=classes, width=width, calibration=calibration, replicas=copies)

    @cached_property
    def _stack(self) -> Stack:
        """The calibration and its replicas, evaluated together on a window."""
        return Stack((self.calibration, *self.replicas))

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
        draws: int = 0,
        seed: int = 0,
    ) -> Estimation:
        """Estimated metrics of a window from its scores and predicted classes; with ``labels``,
        the realized metrics beside them. The sampling noise is the delta method's, or, with
        ``draws`` > 0, the spread over that many label sets drawn with ``seed`` (slower)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != self.width:
            raise NotEstimableError(
                f"the window has {scores.shape[-1] if scores.ndim == 2 else 0} score columns, "
                f"the reference {self.width}"
            )
        n = len(scores)
        if n == 0:
            raise NotEstimableError("the window has no rows")
        k = len(self.classes)
        predicted = _indices(predictions, self.classes)
        full = self._full_scores(scores)
        # Ranks and tie groups of each class's score: for two classes the second's only.
        ranked = [1] if k == 2 else list(range(k))
        ties = {j: _ties(full[:, j]) for j in ranked}
        # The calibration and its bootstrap replicas, stacked: calibrations x rows x classes.
        stack = self._stack.probabilities(scores)
        estimates = self._plug_in(stack, predicted, ties)
        if draws > 0:
            ranks = np.zeros((n, k))
            for j, (r, _, _) in ties.items():
                ranks[:, j] = r
            drawn = self._draw(stack[0], draws, np.random.default_rng(seed))
            sampled = self.metrics(drawn, predicted, ranks)
            noise = {}
            for name, values in sampled.items():
                finite = values[np.isfinite(values)]
                noise[name] = float(finite.var(ddof=1)) if finite.size > 1 else float("nan")
        else:
            noise = self._sampling_variance(stack[0], predicted, ties)
        z = float(ndtri(0.5 + confidence / 2))
        names = list(estimates)
        table = np.stack([estimates[name] for name in names])  # metrics x calibrations
        # Calibration uncertainty: the spread of the estimate over the bootstrap calibrations.
        with warnings.catch_warnings():  # a metric undefined in every replica: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = (
                np.nan_to_num(np.nanvar(table[:, 1:], axis=1, ddof=1)) if len(table[0]) > 2 else 0
            )
        half = z * np.sqrt(np.array([noise[name] for name in names]) + spread)
        metrics = {}
        for name, value, h in zip(names, table[:, 0].tolist(), half.tolist(), strict=True):
            if not (math.isfinite(value) and math.isfinite(h)):
                metrics[name] = Estimate(value, None, None)
            else:
                metrics[name] = Estimate(value, max(value - h, 0.0), min(value + h, 1.0))
        realized: dict[str, float] = {}
        if labels is not None:
            truth = _indices(labels, self.classes)
            keep = truth >= 0
            if keep.any():
                ranks = np.zeros((int(keep.sum()), k))
                for j in ranked:
                    ranks[:, j] = _ties(full[keep, j])[0]
                got = self.metrics(truth[keep][None, :], predicted[keep], ranks)
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
        self,
        p: NDArray[np.float64],
        predicted: NDArray[np.int64],
        ties: dict[int, tuple[NDArray[np.float64], NDArray[np.intp], int]],
    ) -> dict[str, NDArray[np.float64]]:
        """The CBPE point estimates for each of the stacked calibrations ``p`` (calibrations x
        rows x classes): metrics of the expected confusion matrix, expected AUC (``ties``: each
        ranked class's ranks and tie groups)."""
        stack, n, k = p.shape
        # Expected confusion (true x predicted) of each calibration: per predicted class, the
        # sum of its rows' probabilities (not a product with a one-hot matrix: einsum was 3-8x
        # slower, BLAS's threads spin on a busy machine); rows of unknown prediction count nowhere.
        confusion = np.empty((stack, k, k))
        for c in range(k):
            confusion[:, :, c] = p[:, predicted == c, :].sum(axis=1)
        out = _confusion_metrics(confusion, self.classes, float(n))
        aucs = np.stack([_expected_auc(p[:, :, j], g, c) for j, (_, g, c) in ties.items()])
        with warnings.catch_warnings():  # a class without positives has no AUC
            warnings.simplefilter("ignore", RuntimeWarning)
            out["roc_auc"] = aucs[0] if k == 2 else np.nanmean(aucs, axis=0)
        return out

    def _sampling_variance(
        self,
        p: NDArray[np.float64],
        predicted: NDArray[np.int64],
        ties: dict[int, tuple[NDArray[np.float64], NDArray[np.intp], int]],
    ) -> dict[str, float]:
        """Each metric's variance over the window's labels drawn from ``p`` (rows x classes), by
        the delta method: the metric's gradient with respect to the sums it is made of, at their
        expected values, gives each row's influence per possible label; the rows are
        independent, so the variances of their influences add up."""
        n, k = p.shape
        known = predicted >= 0
        c, q = predicted[known], p[known]
        # A row predicted c with label l adds one to the confusion cell (l, c). What the
        # variance needs of the rows predicted c: the expected count of each label (the
        # expected confusion matrix) and the sums of products of their probabilities.
        cells = (np.arange(k)[None, :] * k + c[:, None]).ravel()
        confusion = np.bincount(cells, weights=q.ravel(), minlength=k * k).reshape(k, k)
        pairs = (c[:, None, None] * k * k + np.arange(k * k).reshape(k, k)[None]).ravel()
        products = np.bincount(
            pairs, weights=(q[:, :, None] * q[:, None, :]).ravel(), minlength=k**3
        ).reshape(k, k, k)  # predicted x label x label
        tp = np.diagonal(confusion)
        columns = confusion.sum(axis=0)  # rows predicted per class (fixed: the model's outputs)
        actual = confusion.sum(axis=1)  # rows per true class (expected)
        both = columns + actual
        eye = np.eye(k)
        col_is = eye[:, None, :]  # indexed [metric class m, label l, predicted c]: c == m
        row_is = eye[:, :, None]  # l == m

        def scaled(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
            return _safe_ratio(num, (den**2)[:, None, None])

        families = {  # d metric / d confusion[l, c], per class m
            "precision": scaled(
                col_is * (row_is * columns[:, None, None] - tp[:, None, None]), columns
            ),
            "recall": scaled(row_is * (col_is * actual[:, None, None] - tp[:, None, None]), actual),
            "f1": scaled(
                2 * (row_is * col_is * both[:, None, None] - tp[:, None, None] * (col_is + row_is)),
                both,
            ),
        }
        names = ["accuracy"]
        gradients = [eye[None] / n]
        for family, gradient in families.items():
            names += [family, *(f"{family}:{label}" for label in self.classes)]
            gradients += [gradient.mean(axis=0)[None], gradient]
        g = np.concatenate(gradients)  # metrics x label x predicted
        variance = (g**2 * confusion).sum(axis=(1, 2)) - np.einsum("mlc,clj,mjc->m", g, products, g)
        out = dict(zip(names, np.clip(variance, 0.0, None).tolist(), strict=True))
        # ROC AUC of class j = (S - m(m+1)/2) / (m(n-m)), S the positives' rank sum and m their
        # number: a row labeled j moves it by dAUC/dS * rank + dAUC/dm.
        influence = np.zeros((k, n))
        used = [j for j in ties if 0.0 < p[:, j].sum() < n]
        for j in used:
            ranks = ties[j][0]
            m = float(p[:, j].sum())
            total = float((p[:, j] * ranks).sum())
            count = m * (n - m)
            d_total = 1.0 / count
            d_m = (-(m + 0.5) * count - (total - m * (m + 1) / 2) * (n - 2 * m)) / count**2
            influence[j] = (d_total * ranks + d_m) / len(used)
        if not used:
            out["roc_auc"] = float("nan")
        else:
            mean = (influence * p.T).sum(axis=0)
            out["roc_auc"] = max(float((influence**2 * p.T).sum() - (mean**2).sum()), 0.0)
        return out
