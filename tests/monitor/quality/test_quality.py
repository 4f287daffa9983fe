"""Data-quality shares of a window and the input guard's bounds."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.monitor.drift import numerical_reference
from driftloop.monitor.drift.reference import categorical_reference
from driftloop.monitor.profiles import ProfileLayout
from driftloop.monitor.quality import numeric_bounds, numeric_ood, profile_quality


def test_bounds_widen_the_reference_range_by_the_margin() -> None:
    ref = numerical_reference("x", np.array([0.0, 10.0, 5.0, np.nan]))
    assert numeric_bounds(ref, 0.5) == (-5.0, 15.0)
    values = np.array([-5.0, -5.1, 15.1, np.nan, 3.0])
    assert numeric_ood(ref, 0.5, values).tolist() == [False, True, True, False, False]


def test_a_constant_reference_still_has_room_around_it() -> None:
    ref = numerical_reference("x", np.full(10, 4.0))
    assert numeric_bounds(ref, 0.5) == (2.0, 6.0)
    assert numeric_bounds(numerical_reference("y", np.zeros(3)), 0.5) == (-0.5, 0.5)


def test_quality_shares_of_a_window_and_of_the_reference() -> None:
    x = numerical_reference("x", np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    c = categorical_reference("c", {"a": 3, "b": 1}, rows=5, missing=1)
    layout = ProfileLayout([x, c])
    vector, _, _ = layout.count(
        [
            {"x": 2.0, "c": "a"},
            {"x": 9.0, "c": "new"},
            {"x": None, "c": "b"},
            {"x": "bad", "c": None},
        ]
    )
    quality = profile_quality(layout, vector)
    assert quality["records"] == 4
    assert quality["ood_records_ratio"] == pytest.approx(0.5)  # 9.0 is past 4 + 0.5*3; "new"; "bad"
    qx, qc = quality["features"]["x"], quality["features"]["c"]
    assert qx["missing_ratio"] == 0.25
    assert qx["type_errors_ratio"] == 0.25
    assert qx["out_of_range_ratio"] == 0.25
    assert qx["mean"] == pytest.approx(5.5)
    assert qx["reference_missing_ratio"] == pytest.approx(0.2)
    assert qc["unseen_ratio"] == 0.25
    assert qc["missing_ratio"] == 0.25
    assert qc["reference_missing_ratio"] == pytest.approx(0.2)
    assert quality["prediction"] is None


def test_an_empty_window_has_zero_shares_not_errors() -> None:
    layout = ProfileLayout([numerical_reference("x", np.arange(5.0))])
    quality = profile_quality(layout, np.zeros(layout.size))
    assert quality["records"] == 0
    assert quality["features"]["x"]["missing_ratio"] == 0.0
    assert quality["features"]["x"]["mean"] is None
