"""Classification performance on joined rows, equal to scikit-learn's on the same rows.

Macro averages are over the classes present among the labels or the predictions (scikit-learn's
default); a class never predicted has precision 0 (``zero_division=0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from driftloop.feedback.intervals import (
    Metric,
    confusion_bootstrap,
    macro_auc,
    metric,
    normal_mean,
    wilson,
)


def _sorted_classes(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))


def _ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def confusion_statistics(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per stack of confusion matrices ``(..., K, K)`` (true x predicted): macro precision,
    recall and F1, then the F1 of each class; shape ``(..., 3 + K)``."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1)
    predicted = matrices.sum(axis=-2)
    actual = matrices.sum(axis=-1)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)
    macro = np.stack([precision.mean(-1), recall.mean(-1), f1.mean(-1)], axis=-1)
    return np.concatenate([macro, f1], axis=-1)


def classification_metrics(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    *,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[str, Metric], dict[str, dict[str, Any]]]:
    """Accuracy and macro precision, recall, F1 with intervals, and the per-class figures."""
    keep = pd.notna(y_pred)
    y_true, y_pred = y_true[keep], y_pred[keep]
    n = len(y_true)
    if n == 0:
        empty = metric(None, None, None, 0, "wilson")
        return {"accuracy": empty}, {}
    classes = _sorted_classes(pd.unique(np.concatenate([y_true, y_pred])).tolist())
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    t = np.fromiter((index[v] for v in y_true), dtype=np.int64, count=n)
    p = np.fromiter((index[v] for v in y_pred), dtype=np.int64, count=n)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    point = confusion_statistics(matrix.astype(np.float64))
    lower, upper = confusion_bootstrap(
        matrix, confusion_statistics, resamples=resamples, confidence=confidence, rng=rng
    )

    def boot(i: int) -> Metric:
        return metric(point[i], lower[i], upper[i], n, "bootstrap")

    metrics = {
        "accuracy": wilson(float(tp.sum()), n, confidence),
        "precision_macro": boot(0),
        "recall_macro": boot(1),
        "f1_macro": boot(2),
    }
    per_class = {
        str(c): {
            "precision": _zero_division(wilson(float(tp[i]), int(predicted[i]), confidence)),
            "recall": wilson(float(tp[i]), int(actual[i]), confidence),
            "f1": boot(3 + i),
            "support": int(actual[i]),
        }
        for i, c in enumerate(classes)
    }
    return metrics, per_class


def _zero_division(result: Metric) -> Metric:
    # A class never predicted has precision 0 in the macro average (scikit-learn's zero_division=0)
    # but no interval: nothing was observed.
    if result["n"] == 0:
        result["value"] = 0.0
    return result


def score_metrics(
    y_true: NDArray[Any],
    scores: NDArray[np.float64],
    classes: list[Any],
    confidence: float,
) -> dict[str, Metric]:
    """ROC AUC (macro one-vs-rest; binary: of the second class in sorted order) and log loss.

    ``scores`` has a row per label and a column per class, in the order of ``classes``. Rows
    with a missing score (NaN), or whose label is not one of ``classes``, are left out.
    """
    if len(classes) < 2:
        return {}
    ordered = _sorted_classes(list(classes))
    columns = [list(classes).index(c) for c in ordered]
    position = {c: i for i, c in enumerate(ordered)}
    codes = np.fromiter((position.get(label, -1) for label in y_true), np.int64, len(y_true))
    keep = (codes >= 0) & ~np.isnan(scores).any(axis=1)
    matrix = np.asarray(scores, dtype=np.float64)[keep][:, columns]
    code_array = codes[keep]
    n = len(code_array)
    if n == 0:
        return {}
    eps = np.finfo(np.float64).eps
    truth = np.clip(matrix[np.arange(n), code_array], eps, 1 - eps)
    loss = normal_mean(-np.log(truth), confidence)
    return {"roc_auc": macro_auc(code_array, matrix, confidence), "log_loss": loss}
