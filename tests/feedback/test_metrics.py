"""Metric values equal scikit-learn's; intervals cover the truth at their nominal rate."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as sk

from driftloop.feedback.classification import classification_metrics, score_metrics
from driftloop.feedback.intervals import macro_auc, normal_mean, r2, rmse, wilson
from driftloop.feedback.regression import regression_metrics

RNG_SEED = 20261122


def noisy_classes(
    rng: np.random.Generator, n: int, classes: list[object]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, predictions right about 70 % of the time, and probabilities that favour them."""
    k = len(classes)
    truth = rng.integers(0, k, size=n)
    predicted = np.where(rng.random(n) < 0.7, truth, rng.integers(0, k, size=n))
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 1.5
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(classes, dtype=object)
    return labels[truth], labels[predicted], probabilities


@pytest.mark.parametrize(
    "classes",
    [["cat", "dog", "fox"], [0, 1], [True, False], ["b", "a", "c", "d"]],
    ids=["three-strings", "binary-ints", "booleans", "four-unsorted"],
)
def test_classification_metrics_equal_scikit_learns(classes: list[Any]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    y_true, y_pred, probabilities = noisy_classes(rng, 500, classes)
    ours, per_class = classification_metrics(
        y_true, y_pred, confidence=0.95, resamples=200, rng=rng
    )
    extra = score_metrics(y_true, probabilities, classes, 0.95)
    y_true, y_pred = np.array(y_true.tolist()), np.array(y_pred.tolist())  # typed for sklearn
    assert ours["accuracy"]["value"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    for name in ("precision", "recall", "f1"):
        scorer = getattr(sk, f"{name}_score")
        expected = scorer(y_true, y_pred, average="macro", zero_division=0)
        assert ours[f"{name}_macro"]["value"] == pytest.approx(expected)
        each = scorer(y_true, y_pred, average=None, zero_division=0, labels=sorted(set(classes)))
        got = [per_class[str(c)][name]["value"] for c in sorted(set(classes))]
        assert got == pytest.approx(list(each))
    ordered = sorted(classes)
    by_sorted = np.column_stack([probabilities[:, classes.index(c)] for c in ordered])
    assert extra["log_loss"]["value"] == pytest.approx(
        sk.log_loss(y_true, by_sorted, labels=ordered)
    )
    if len(classes) == 2:
        expected_auc = sk.roc_auc_score(y_true == ordered[1], by_sorted[:, 1])
    else:
        expected_auc = sk.roc_auc_score(y_true, by_sorted, multi_class="ovr", labels=ordered)
    assert extra["roc_auc"]["value"] == pytest.approx(expected_auc)


def test_classes_never_predicted_count_as_zero_precision_like_scikit_learn() -> None:
    y_true = np.array(["a", "b", "c", "c"], dtype=object)
    y_pred = np.array(["a", "a", "a", "c"], dtype=object)
    ours, per_class = classification_metrics(
        y_true, y_pred, confidence=0.95, resamples=100, rng=np.random.default_rng(0)
    )
    expected = sk.precision_score(y_true, y_pred, average="macro", zero_division=0)
    assert ours["precision_macro"]["value"] == pytest.approx(expected)
    assert per_class["b"]["precision"] == {**per_class["b"]["precision"], "value": 0.0, "n": 0}


def test_regression_metrics_equal_scikit_learns() -> None:
    rng = np.random.default_rng(RNG_SEED)
    y_true = rng.normal(10, 3, size=400)
    y_pred = y_true + rng.normal(0, 1, size=400)
    ours = regression_metrics(y_true.astype(object), y_pred.astype(object), confidence=0.95)
    assert ours["mae"]["value"] == pytest.approx(sk.mean_absolute_error(y_true, y_pred))
    assert ours["rmse"]["value"] == pytest.approx(sk.root_mean_squared_error(y_true, y_pred))
    assert ours["r2"]["value"] == pytest.approx(sk.r2_score(y_true, y_pred))
    for metric in ours.values():
        assert metric["lower"] < metric["value"] < metric["upper"]
        assert metric["n"] == 400


def test_wilson_matches_the_closed_form_and_stays_inside_zero_and_one() -> None:
    z = NormalDist().inv_cdf(0.975)
    p, n = 0.3, 50
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    got = wilson(15, 50, 0.95)
    assert (got["lower"], got["upper"]) == pytest.approx((centre - half, centre + half))
    assert wilson(0, 10, 0.95)["lower"] == 0.0
    assert wilson(10, 10, 0.95)["upper"] == 1.0
    assert wilson(0, 0, 0.95)["value"] is None


def coverage(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


# 400 repetitions: the coverage estimate has a standard error of about 1.1 points at 95 %, so a
# correct interval lands in [0.92, 0.98] with near certainty, and a wrong one (too narrow by a
# quarter, or biased) does not.
REPS = 400
LOW, HIGH = 0.92, 0.98


def test_proportion_and_mean_intervals_cover_at_their_nominal_rate() -> None:
    rng = np.random.default_rng(RNG_SEED)
    accuracy_hits, mae_hits, rmse_hits, r2_hits = [], [], [], []
    sigma = 0.8
    for _ in range(REPS):
        correct = rng.random(120) < 0.85
        interval = wilson(float(correct.sum()), 120, 0.95)
        accuracy_hits.append(interval["lower"] <= 0.85 <= interval["upper"])
        x = rng.normal(size=300)
        errors = rng.normal(0, sigma, size=300)
        mae = normal_mean(np.abs(errors), 0.95)
        mae_hits.append(mae["lower"] <= sigma * math.sqrt(2 / math.pi) <= mae["upper"])
        root = rmse(errors, 0.95)
        rmse_hits.append(root["lower"] <= sigma <= root["upper"])
        fit = r2(x + errors, -errors, 0.95)  # the prediction is x; y = x + e
        r2_hits.append(fit["lower"] <= 1 - sigma**2 / (1 + sigma**2) <= fit["upper"])
    for name, hits in {
        "accuracy": accuracy_hits,
        "mae": mae_hits,
        "rmse": rmse_hits,
        "r2": r2_hits,
    }.items():
        assert LOW <= coverage(hits) <= HIGH, (name, coverage(hits))


def test_bootstrap_f1_interval_covers_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(RNG_SEED)
    cells = np.array([[0.30, 0.03, 0.02], [0.05, 0.20, 0.05], [0.02, 0.08, 0.25]])
    tp = np.diag(cells)
    truth = float(np.mean(2 * tp / (cells.sum(axis=0) + cells.sum(axis=1))))
    classes = np.array(["a", "b", "c"], dtype=object)
    hits = []
    for _ in range(REPS):
        drawn = rng.choice(9, size=400, p=cells.ravel())
        ours, _ = classification_metrics(
            classes[drawn // 3], classes[drawn % 3], confidence=0.95, resamples=400, rng=rng
        )
        hits.append(ours["f1_macro"]["lower"] <= truth <= ours["f1_macro"]["upper"])
    assert LOW <= coverage(hits) <= HIGH, coverage(hits)


@pytest.mark.parametrize("k", [2, 3], ids=["binary", "three-classes"])
def test_delong_auc_interval_covers_at_its_nominal_rate(k: int) -> None:
    rng = np.random.default_rng(RNG_SEED + k)
    shift = 1.0

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        codes = rng.integers(0, k, size=n)
        scores = rng.normal(size=(n, k))
        scores[np.arange(n), codes] += shift
        return codes, scores

    if k == 2:
        truth = NormalDist().cdf(shift / math.sqrt(2))  # column 1: positives shifted by `shift`
    else:
        codes, scores = draw(400_000)  # the population value, by brute force once
        truth = float(np.mean([sk.roc_auc_score(codes == c, scores[:, c]) for c in range(k)]))
    hits = []
    for _ in range(REPS):
        codes, scores = draw(300)
        got = macro_auc(codes, scores, 0.95)
        hits.append(got["lower"] <= truth <= got["upper"])
    assert LOW <= coverage(hits) <= HIGH, coverage(hits)
