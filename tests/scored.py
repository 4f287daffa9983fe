"""A calibrated binary classifier's rows, for the tests of estimation without labels."""

from __future__ import annotations

import numpy as np
import pandas as pd


def calibrated_classifier(n: int, seed: int, spread: float = 1.0) -> pd.DataFrame:
    """``n`` rows of P(b | x) = sigmoid(2x), predicted b when above 0.5: the scores ``p_a`` and
    ``p_b``, the ``prediction`` and a ``label`` drawn with that probability. Rows spread widely
    (``spread`` 1) are easy, an accuracy near 0.8; rows near the boundary (``spread`` 0.1) are
    about a coin toss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=spread, size=n)
    p = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame(
        {
            "x": x,
            "p_a": 1 - p,
            "p_b": p,
            "prediction": np.where(p > 0.5, "b", "a"),
            "label": np.where(rng.random(n) < p, "b", "a"),
        }
    )
