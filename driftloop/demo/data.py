"""The demo's data: scikit-learn's bundled iris measurements (no download), replayed as traffic
with measurement noise, and a drift injected partway through (the petals read larger, as if a new
camera were miscalibrated), which the champion, trained before it, does not know about."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.extras import needs_extra

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"
DRIFT = {"petal_length": 1.6, "petal_width": 0.7}


def iris_frame() -> pd.DataFrame:
    """Iris as a frame with readable feature names and the species name as label."""
    with needs_extra("demo", "the demo's data set"):
        from sklearn.datasets import load_iris

    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=FEATURES)
    frame[LABEL] = [str(iris.target_names[t]) for t in iris.target]
    return frame


@dataclass(frozen=True)
class Request:
    """One request of the replay: features, the true label, and whether drift was on."""

    features: dict[str, float]
    label: str
    drifted: bool


def traffic(count: int, drift_from: int, seed: int = 7) -> list[Request]:
    """``count`` requests sampled from iris with noise; from ``drift_from`` on, petals shift."""
    rng = np.random.default_rng(seed)
    frame = iris_frame()
    picks = rng.integers(0, len(frame), size=count)
    noise = rng.normal(0, 0.15, size=(count, len(FEATURES)))
    out = []
    for i, (row, jitter) in enumerate(zip(picks, noise, strict=True)):
        values = frame.loc[row, FEATURES].to_numpy(dtype=float) + jitter
        drifted = i >= drift_from
        features = {name: round(float(v), 2) for name, v in zip(FEATURES, values, strict=True)}
        if drifted:
            for name, shift in DRIFT.items():
                features[name] = round(features[name] + shift, 2)
        out.append(Request(features, str(frame.loc[row, LABEL]), drifted))
    return out


def train(frame: pd.DataFrame, path: str) -> float:
    """Fit a logistic regression on ``frame`` (features and label), save it with joblib, and
    return its training accuracy."""
    with needs_extra("demo", "training the demo's models"):
        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame[FEATURES], frame[LABEL])
    joblib.dump(model, path)
    return float(model.score(frame[FEATURES], frame[LABEL]))
