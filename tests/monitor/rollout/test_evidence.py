"""Per-row values of the primary metric: higher is always better."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.contract import PredictionKind
from driftloop.monitor.rollout.evidence import row_values


def test_classification_scores_correctness_across_number_and_text_labels() -> None:
    frame = pd.DataFrame(
        {"prediction": [1, "cat", 2.0, None, True], "label": [1.0, "cat", 3, 0, "True"]}
    )
    values = row_values(frame, PredictionKind.classification, "squared")
    assert list(values) == [1.0, 1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("loss", "expected"), [("squared", [-4.0, -0.25]), ("absolute", [-2.0, -0.5])]
)
def test_regression_scores_minus_the_loss_and_nan_when_unscorable(
    loss: str, expected: list[float]
) -> None:
    frame = pd.DataFrame({"prediction": [3.0, 1.5, "oops"], "label": [1.0, 1.0, 2.0]})
    values = row_values(frame, PredictionKind.regression, loss)
    np.testing.assert_allclose(values[:2], expected)
    assert np.isnan(values[2])


def test_no_rows_give_no_values() -> None:
    empty = pd.DataFrame({"prediction": [], "label": []})
    assert row_values(empty, PredictionKind.classification, "squared").size == 0
