"""CBPE on scikit-learn's bundled data: under covariate shift the estimate tracks the realized
metric and its interval covers it at about its nominal rate; under concept shift it is blind and
the reconciliation shows the gap."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression

from driftloop.monitor.estimation import ClassificationEstimator, NotEstimableError

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _split(x: NDArray[Any], y: NDArray[Any], seed: int) -> tuple[Any, ...]:
    """Train on a third, calibrate on a third (the reference), draw windows from the rest."""
    rng = np.random.default_rng(seed)
    train, reference, pool = np.array_split(rng.permutation(len(y)), 3)
    return rng, train, reference, pool


def _shifted_windows(
    x: NDArray[np.float64], pool: NDArray[np.int64], rng: np.random.Generator, n: int, size: int
) -> list[NDArray[np.int64]]:
    """Windows drawn without replacement, each leaning along the data's first principal axis by
    a random amount (covariate shift: the label given the features is unchanged)."""
    centred = x[pool] - x[pool].mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    z = centred @ axis
    z = (z - z.mean()) / z.std()
    windows = []
    for _ in range(n):
        weight = np.exp(rng.uniform(-1.2, 1.2) * z)
        windows.append(pool[rng.choice(len(pool), size, replace=False, p=weight / weight.sum())])
    return windows


def _digits(task: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)
    return x, (y >= 5).astype(np.int64) if task == "binary" else y


@pytest.mark.parametrize("task", ["binary", "ten-class"])
def test_the_interval_covers_the_realized_metric_under_covariate_shift(task: str) -> None:
    x, y = _digits(task)
    covered: dict[str, list[bool]] = {m: [] for m in METRICS}
    errors: list[float] = []
    for seed in range(3):  # three reference/pool splits, so windows are not all of one pool
        rng, train, reference, pool = _split(x, y, seed=seed)
        model = LogisticRegression(max_iter=3000, C=0.02).fit(x[train], y[train])
        estimator = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
        for i, rows in enumerate(_shifted_windows(x, pool, rng, n=15, size=150)):
            result = estimator.estimate(
                model.predict_proba(x[rows]), model.predict(x[rows]), labels=y[rows], seed=i
            )
            for m in METRICS:
                covered[m].append(result.metrics[m].covers(result.realized[m]))
            errors.append(abs(result.error()["accuracy"]))
    for m in METRICS:
        # nominal 95 %; 45 windows: a true rate of 0.95 falls under 0.85 with chance < 1 %
        assert np.mean(covered[m]) >= 0.85, (m, np.mean(covered[m]))
    assert np.mean(errors) < 0.03


def test_the_estimate_follows_accuracy_down_when_the_window_leans_to_hard_rows() -> None:
    x, y = load_digits(return_X_y=True)
    _rng, train, reference, pool = _split(x, y, seed=5)
    model = LogisticRegression(max_iter=2000, C=0.001).fit(x[train], y[train])
    estimator = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
    confidence = model.predict_proba(x[pool]).max(axis=1)
    easy, hard = pool[confidence >= np.median(confidence)], pool[confidence < np.median(confidence)]
    results = {
        name: estimator.estimate(model.predict_proba(x[r]), model.predict(x[r]), labels=y[r])
        for name, r in (("easy", easy), ("hard", hard))
    }
    assert results["hard"].realized["accuracy"] < results["easy"].realized["accuracy"]
    assert (
        results["hard"].metrics["accuracy"].estimate < results["easy"].metrics["accuracy"].estimate
    )
    for result in results.values():
        assert result.metrics["accuracy"].covers(result.realized["accuracy"])


def test_concept_shift_is_invisible_to_the_estimate_and_visible_in_the_reconciliation() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    _, train, reference, pool = _split(x, y, seed=1)
    model = LogisticRegression(max_iter=2000).fit(x[train], y[train])
    estimator = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
    flipped = 1 - y[pool]  # the world changed: the same inputs now mean the other class
    result = estimator.estimate(
        model.predict_proba(x[pool]), model.predict(x[pool]), labels=flipped
    )
    assert result.metrics["accuracy"].estimate > 0.9
    assert result.realized["accuracy"] < 0.1
    assert result.error()["accuracy"] > 0.8
    assert not result.metrics["accuracy"].covers(result.realized["accuracy"])


def test_the_realized_metrics_equal_scikit_learns() -> None:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, roc_auc_score

    x, y = load_digits(return_X_y=True)
    _, train, reference, pool = _split(x, y, seed=2)
    model = LogisticRegression(max_iter=2000, C=0.01).fit(x[train], y[train])
    estimator = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
    scores, predicted = model.predict_proba(x[pool]), model.predict(x[pool])
    realized = estimator.estimate(scores, predicted, labels=y[pool]).realized
    assert realized["accuracy"] == pytest.approx(accuracy_score(y[pool], predicted))
    assert realized["f1"] == pytest.approx(f1_score(y[pool], predicted, average="macro"))
    assert realized["precision"] == pytest.approx(
        precision_score(y[pool], predicted, average="macro", zero_division=0)
    )
    assert realized["roc_auc"] == pytest.approx(
        roc_auc_score(y[pool], scores, multi_class="ovr", average="macro")
    )


def test_one_score_column_stands_for_a_binary_model() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    _, train, reference, pool = _split(x, y, seed=4)
    model = LogisticRegression(max_iter=2000).fit(x[train], y[train])
    one = ClassificationEstimator.fit(model.predict_proba(x[reference])[:, 1:], y[reference])
    two = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
    a = one.estimate(model.predict_proba(x[pool])[:, 1:], model.predict(x[pool]))
    b = two.estimate(model.predict_proba(x[pool]), model.predict(x[pool]))
    assert a.metrics["accuracy"].estimate == pytest.approx(b.metrics["accuracy"].estimate)
    assert a.metrics["roc_auc"].estimate == pytest.approx(b.metrics["roc_auc"].estimate)


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        pytest.param(np.zeros((200, 0)), [0, 1] * 100, "no scores", id="no-scores"),
        pytest.param(np.full((50, 2), 0.5), [0, 1] * 25, "too few reference labels", id="few"),
        pytest.param(
            np.full((200, 2), 0.5), [0] * 195 + [1] * 5, "too few reference labels", id="one-class"
        ),
        pytest.param(np.full((200, 3), 0.3), [0, 1] * 100, "3 score columns for 2", id="width"),
    ],
)
def test_a_model_that_cannot_be_calibrated_says_why(
    scores: NDArray[np.float64], labels: list[int], match: str
) -> None:
    with pytest.raises(NotEstimableError, match=match):
        ClassificationEstimator.fit(scores, labels)


@pytest.mark.parametrize("task", ["binary", "ten-class"])
def test_the_delta_method_interval_matches_monte_carlo_label_draws(task: str) -> None:
    """The sampling part of the interval is computed by the delta method; drawing the window's
    labels from the calibrated probabilities 4,000 times must give the same width (no
    bootstrap replicas here, so the width is the sampling noise alone)."""
    x, y = _digits(task)
    rng, train, reference, pool = _split(x, y, seed=3)
    model = LogisticRegression(max_iter=3000, C=0.02).fit(x[train], y[train])
    estimator = ClassificationEstimator.fit(
        model.predict_proba(x[reference]), y[reference], replicas=0
    )
    for size in (150, 500):
        rows = rng.choice(pool, size, replace=False)
        scores, predicted = model.predict_proba(x[rows]), model.predict(x[rows])
        analytic = estimator.estimate(scores, predicted).metrics
        drawn = estimator.estimate(scores, predicted, draws=4000, seed=size).metrics
        for m in METRICS:
            a, d = analytic[m], drawn[m]
            assert a.estimate == pytest.approx(d.estimate)
            assert a.lower is not None
            assert a.upper is not None
            assert d.lower is not None
            assert d.upper is not None
            assert a.lower > 0, (m, a)  # unclipped, so widths compare
            assert a.upper < 1, (m, a)
            ratio = (a.upper - a.lower) / (d.upper - d.lower)
            assert 0.9 < ratio < 1.1, (task, size, m, ratio)


@pytest.mark.parametrize("task", ["binary", "ten-class"])
def test_the_replicas_evaluated_together_equal_each_evaluated_alone(task: str) -> None:
    """The calibration and its bootstrap replicas are applied to a window as one stack (their
    isotonic maps through the union of their knots); each must give what it gives alone."""
    from driftloop.monitor.estimation.calibration import IsotonicMap, Stack

    x, y = _digits(task)
    _rng, train, reference, pool = _split(x, y, seed=6)
    model = LogisticRegression(max_iter=3000, C=0.02).fit(x[train], y[train])
    estimator = ClassificationEstimator.fit(model.predict_proba(x[reference]), y[reference])
    everyone = (estimator.calibration, *estimator.replicas)
    scores = model.predict_proba(x[pool])
    together = Stack(everyone).probabilities(scores)
    assert together.shape == (len(everyone), len(pool), scores.shape[1])
    np.testing.assert_allclose(together.sum(axis=2), 1.0)
    for i, calibration in enumerate(everyone):
        alone = Stack((calibration,)).probabilities(scores)[0]
        np.testing.assert_allclose(together[i], alone, atol=1e-12)
        first = calibration.maps[0]
        if task == "binary" and isinstance(first, IsotonicMap):  # np.interp on its own knots
            np.testing.assert_allclose(together[i][:, 1], first(scores[:, 1]), atol=1e-12)
