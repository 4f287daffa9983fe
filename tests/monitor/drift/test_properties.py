"""Properties that hold for any data (Hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from driftloop.monitor.drift import (
    DriftConfig,
    Reference,
    bin_index,
    compare_frame,
    js_distance,
    ks_statistic,
    numerical_reference,
    psi_counts,
)
from driftloop.monitor.drift.reference import sorted_counts

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-1e6, 1e6, allow_nan=False, width=64)
numbers = arrays(np.float64, st.integers(1, 200), elements=finite)
with_nans = arrays(np.float64, st.integers(1, 120), elements=finite | st.just(np.nan))
labels = st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=150)


def _frame(num: np.ndarray, cat: list[str | None]) -> pd.DataFrame:
    size = max(num.size, len(cat))
    return pd.DataFrame(
        {
            "x": np.resize(num, size),
            "c": pd.Series(np.resize(np.array(cat, dtype=object), size), dtype=object),
        }
    )


@FAST
@given(num=numbers, cat=labels)
def test_a_sample_never_drifts_against_itself(num: np.ndarray, cat: list[str | None]) -> None:
    frame = _frame(num, cat)
    if frame["c"].isna().all():
        frame = frame[["x"]]  # a reference column without values is refused (tested elsewhere)
    report = compare_frame(Reference.from_frame(frame), frame, DriftConfig())
    assert not report.dataset_drift
    for feature in report.features:
        assert not feature.drifted
        assert feature.statistic is not None
        assert feature.effect_size == 0.0


@FAST
@given(ref=numbers, cur=numbers, seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(ref: np.ndarray, cur: np.ndarray, seed: int) -> None:
    reference = Reference.from_frame(pd.DataFrame({"x": ref}))
    shuffled = np.random.default_rng(seed).permutation(cur)
    a = compare_frame(reference, pd.DataFrame({"x": cur}), DriftConfig()).as_json()
    b = compare_frame(reference, pd.DataFrame({"x": shuffled}), DriftConfig()).as_json()
    assert a == b


@FAST
@given(ref=numbers, cur=numbers)
def test_bounds_hold(ref: np.ndarray, cur: np.ndarray) -> None:
    d, _ = ks_statistic(np.sort(ref), np.sort(cur))
    assert 0.0 <= d <= 1.0
    report = compare_frame(
        Reference.from_frame(pd.DataFrame({"x": ref})),
        pd.DataFrame({"x": cur}),
        DriftConfig(min_rows=1),
    )
    feature = report.features[0]
    assert feature.p_value is not None
    assert 0.0 <= feature.p_value <= 1.0
    assert feature.p_adjusted is not None
    assert feature.p_value <= feature.p_adjusted <= 1.0
    assert feature.effect_size is not None
    assert feature.effect_size >= 0.0
    assert 0.0 <= report.drifted_share <= 1.0


@FAST
@given(
    a=arrays(np.float64, 6, elements=st.floats(0, 1e6)),
    b=arrays(np.float64, 6, elements=st.floats(0, 1e6)),
)
def test_distance_bounds_on_counts(a: np.ndarray, b: np.ndarray) -> None:
    if a.sum() == 0 or b.sum() == 0:
        return
    assert 0.0 <= js_distance(a, b) <= 1.0
    assert psi_counts(a, b) >= 0.0
    assert js_distance(a, a) == 0.0


@FAST
@given(ref=with_nans, cur=with_nans)
def test_nans_and_empty_windows_give_a_clear_result(ref: np.ndarray, cur: np.ndarray) -> None:
    if np.isnan(ref).all():
        return  # a reference without values is refused at preparation (tested below)
    reference = Reference.from_frame(pd.DataFrame({"x": ref}))
    report = compare_frame(reference, pd.DataFrame({"x": cur}), DriftConfig())
    feature = report.features[0]
    if np.isnan(cur).all():
        assert feature.statistic is None
        assert feature.note == "no numeric values in the current data"
        # Only the missing share can decide: a window of nothing but missing values drifts
        # when that share is significantly and materially above the reference's.
        assert feature.drifted == bool(feature.missing and feature.missing["drifted"])
        if feature.drifted:
            assert feature.missing is not None
            assert feature.missing["share"] == 1.0
            assert feature.missing["p_adjusted"] < 0.05
    else:
        assert feature.statistic is not None
    empty = compare_frame(reference, pd.DataFrame({"x": np.array([], dtype=float)}), DriftConfig())
    assert empty.features[0].statistic is None
    assert not empty.dataset_drift


@FAST
@given(
    data=arrays(np.float64, st.integers(1, 300), elements=st.integers(-5, 5).map(float) | finite)
)
def test_counting_sorted_data_equals_binning_each_value(data: np.ndarray) -> None:
    ref = numerical_reference("x", data)
    np.testing.assert_array_equal(
        sorted_counts(ref.edges, ref.sorted),
        np.bincount(bin_index(ref.edges, ref.sorted), minlength=ref.edges.size + 1),
    )
    assert ref.counts.sum() == data.size
