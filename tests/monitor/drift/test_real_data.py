"""Drift decisions that hold on data shaped like production data (issue 17).

Seeded, vectorised where it matters, bounded: scikit-learn's bundled datasets split without any
shift, sparse categories, small windows with one new category, discrete numbers and flags,
missing values, tiny and heavy-tailed spreads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from driftloop.contract import FeatureKind
from driftloop.monitor.drift import DriftConfig, FeatureSpec, Reference, compare_frame
from driftloop.monitor.drift.reference import NumericalReference
from driftloop.monitor.profiles import ProfileLayout, profile_drift

LOADERS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "digits": datasets.load_digits,
}


def _flags(report: object) -> bool:
    return bool(report.dataset_drift or any(f.drifted for f in report.features))  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("name", LOADERS, ids=LOADERS)
def test_random_splits_of_bundled_datasets_rarely_flag_anything(name: str) -> None:
    frame = LOADERS[name](as_frame=True).frame
    rng = np.random.default_rng(17)
    splits, flagged = 40, 0
    for _ in range(splits):
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        ref, cur = frame.iloc[order[:half]], frame.iloc[order[half:]]
        flagged += _flags(compare_frame(Reference.from_frame(ref), cur, DriftConfig()))
    assert flagged / splits <= 0.08


def test_digits_pixels_are_tested_as_discrete_values() -> None:
    frame = datasets.load_digits(as_frame=True).frame
    reference = Reference.from_frame(frame.iloc[:900])
    report = compare_frame(reference, frame.iloc[900:], DriftConfig())
    assert report.feature("pixel_0_4").method == "chi2"
    assert report.feature("pixel_0_4").kind is FeatureKind.numerical


def _zipf_shares(k: int, s: float = 1.2) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** s
    return weights / weights.sum()


def test_sparse_categories_keep_their_size() -> None:
    """Zipf(1.2) over 200 categories, 1,000 rows against 1,000, no drift (was 62.5 % flagged)."""
    rng = np.random.default_rng(1)
    cats = np.array([f"c{i:03d}" for i in range(200)])
    shares = _zipf_shares(200)
    trials, flagged = 200, 0
    for _ in range(trials):
        ref = pd.DataFrame({"c": cats[rng.choice(200, 1000, p=shares)]})
        cur = pd.DataFrame({"c": cats[rng.choice(200, 1000, p=shares)]})
        flagged += _flags(compare_frame(Reference.from_frame(ref), cur, DriftConfig()))
    assert flagged / trials <= 0.08


def test_sparse_categories_still_show_a_real_change() -> None:
    rng = np.random.default_rng(2)
    cats = np.array([f"c{i:03d}" for i in range(200)])
    shares = _zipf_shares(200)
    ref = pd.DataFrame({"c": cats[rng.choice(200, 1000, p=shares)]})
    cur = pd.DataFrame({"c": cats[rng.choice(200, 1000, p=shares[::-1])]})
    assert compare_frame(Reference.from_frame(ref), cur, DriftConfig()).features[0].drifted


def _mixed(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "age": rng.normal(40, 12, n),
            "country": rng.choice(list("ABCDEFGHIJ"), n, p=_zipf_shares(10, 1.0)),
            "device": rng.choice(["ios", "android", "web"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_small_windows_with_one_new_category_rarely_flag() -> None:
    """Windows of 80 rows from the reference's own distribution, half of them with one row of a
    category the reference never saw, against 5,000 reference rows (was 11 of 20 flagged)."""
    rng = np.random.default_rng(3)
    reference = Reference.from_frame(_mixed(rng, 5000))
    trials, flagged = 200, 0
    for i in range(trials):
        window = _mixed(rng, 80)
        if i % 2:
            window.loc[0, "country"] = "never-seen"
        flagged += _flags(compare_frame(reference, window, DriftConfig()))
    assert flagged / trials <= 0.10


def test_a_new_category_that_takes_a_real_share_is_found_in_a_small_window() -> None:
    rng = np.random.default_rng(4)
    reference = Reference.from_frame(_mixed(rng, 5000))
    window = _mixed(rng, 80)
    window.loc[:30, "country"] = "never-seen"
    assert compare_frame(reference, window, DriftConfig()).feature("country").drifted


def test_a_window_below_the_minimum_gets_no_verdict() -> None:
    rng = np.random.default_rng(5)
    reference = Reference.from_frame(_mixed(rng, 5000))
    window = pd.DataFrame({"amount": [1e6] * 4, "age": [500.0] * 4, "country": ["zz"] * 4})
    report = compare_frame(reference, window, DriftConfig(min_rows=30))
    assert not report.dataset_drift
    amount = report.feature("amount")
    assert not amount.drifted
    assert not amount.tested
    assert amount.note == "4 values, fewer than the minimum of 30: no verdict"
    # The minimum is a setting: at 4 rows allowed, the same window is plainly drifted.
    assert compare_frame(reference, window, DriftConfig(min_rows=4)).feature("amount").drifted


def _flag_frame(rng: np.random.Generator, n: int, p: float) -> pd.DataFrame:
    return pd.DataFrame({"flag": (rng.random(n) < p).astype(np.int64), "x": rng.normal(size=n)})


def test_a_rare_flag_that_becomes_common_is_found_raw_and_online() -> None:
    """A 0/1 flag going from 0.5 % to 50 %: the profile grid used to merge 0 and 1 (KS 0)."""
    rng = np.random.default_rng(6)
    reference = Reference.from_frame(_flag_frame(rng, 20_000, 0.005))
    flag = reference.features["flag"]
    assert flag.discrete  # type: ignore[union-attr]
    layout = ProfileLayout([reference.features[s.name] for s in reference.specs])
    window = _flag_frame(rng, 400, 0.5)
    raw = compare_frame(reference, window, DriftConfig()).feature("flag")
    online = profile_drift(layout, layout.count_frame(window), DriftConfig()).features[0]
    assert raw.drifted
    assert online.drifted
    assert raw.method == online.method == "chi2"
    assert online.statistic == pytest.approx(raw.statistic, rel=1e-12)
    assert online.p_value == pytest.approx(raw.p_value, rel=1e-9)


def _discrete_frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flag": (rng.random(n) < 0.02 + shift / 10).astype(np.int64),
            "count": rng.poisson(2 + shift, n),
            "rating": np.clip(np.rint(rng.normal(3 + shift, 1, n)), 1, 5),
            "rounded": np.round(rng.normal(shift, 1, n), 1),  # ~60 tied values: not discrete
            "zero_inflated": np.where(rng.random(n) < 0.6, 0.0, rng.exponential(1 + shift, n)),
        }
    )


def test_online_decisions_equal_raw_decisions_on_discrete_and_tied_data() -> None:
    """The same windows decided raw and from profiles: the decisions agree one for one."""
    rng = np.random.default_rng(7)
    reference = Reference.from_frame(_discrete_frame(rng, 10_000, 0.0))
    layout = ProfileLayout([reference.features[s.name] for s in reference.specs])
    decisions = disagreements = 0
    for shift in np.tile([0.0, 0.05, 0.1, 0.2, 0.4], 16):
        window = _discrete_frame(rng, int(rng.integers(50, 2000)), float(shift))
        raw = compare_frame(reference, window, DriftConfig())
        online = profile_drift(layout, layout.count_frame(window), DriftConfig())
        for a, b in zip(raw.features, online.features, strict=True):
            decisions += 1
            disagreements += a.drifted != b.drifted
            if a.method == "chi2":
                assert b.statistic == pytest.approx(a.statistic, rel=1e-9, abs=1e-12)
    assert decisions == 400
    assert disagreements <= 2  # binned KS on the one continuous-with-ties feature


def test_a_rise_in_missing_values_is_drift() -> None:
    rng = np.random.default_rng(8)
    reference = Reference.from_frame(pd.DataFrame({"x": rng.normal(size=5000)}))
    values = rng.normal(size=400)
    values[:200] = np.nan
    feature = compare_frame(reference, pd.DataFrame({"x": values}), DriftConfig()).features[0]
    assert feature.drifted
    assert feature.missing is not None
    assert feature.missing["share"] == 0.5
    assert feature.missing["reference_share"] == 0.0
    # A few missing values are significant but not material (under 10 share points).
    values = rng.normal(size=4000)
    values[:80] = np.nan
    feature = compare_frame(reference, pd.DataFrame({"x": values}), DriftConfig()).features[0]
    assert feature.missing is not None
    assert feature.missing["p_adjusted"] < 0.05
    assert not feature.drifted


def test_a_five_sigma_shift_is_material_however_small_sigma_is() -> None:
    rng = np.random.default_rng(9)
    reference = Reference.from_frame(pd.DataFrame({"x": 3.0 + rng.normal(0, 1e-5, 5000)}))
    shifted = pd.DataFrame({"x": 3.0 + 5e-5 + rng.normal(0, 1e-5, 1000)})
    feature = compare_frame(reference, shifted, DriftConfig()).features[0]
    assert feature.effect_size is not None
    assert feature.effect_size > 3
    assert feature.drifted


def test_a_heavy_tail_does_not_hide_a_shift_of_the_bulk() -> None:
    rng = np.random.default_rng(10)
    reference = Reference.from_frame(pd.DataFrame({"x": rng.lognormal(0, 2, 20_000)}))
    scaled = pd.DataFrame({"x": 1.5 * rng.lognormal(0, 2, 20_000)})
    feature = compare_frame(reference, scaled, DriftConfig()).features[0]
    assert feature.p_adjusted is not None
    assert feature.p_adjusted < 1e-10
    assert feature.drifted


def test_a_trivial_shift_at_200k_rows_stays_immaterial_and_a_real_one_material() -> None:
    rng = np.random.default_rng(12)
    n = 200_000
    ref = pd.DataFrame({"tiny": rng.normal(0, 1, n), "real": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"tiny": rng.normal(0.03, 1, n), "real": rng.normal(0.3, 1, n)})
    report = compare_frame(Reference.from_frame(ref), cur, DriftConfig())
    tiny = report.feature("tiny")
    assert tiny.p_adjusted is not None
    assert tiny.p_adjusted < 1e-6
    assert not tiny.drifted
    assert report.feature("real").drifted


def test_a_discrete_feature_accepts_chi2_and_ks_by_name() -> None:
    frame = pd.DataFrame({"n": np.tile([0, 1, 2], 100)})
    specs = [FeatureSpec("n", FeatureKind.numerical, method="ks")]
    report = compare_frame(Reference.from_frame(frame, specs), frame, DriftConfig())
    assert report.features[0].method == "ks"


def test_a_discrete_feature_counted_in_fractions_has_no_negative_count() -> None:
    """Windows that cover a bucket in part count its values in fractions; when every value sits
    on an atom, the count of "every other value" rounds to about -1e-13. A negative count fails
    the chi-square (bench/scale.py, whose profiles count partial buckets in fractions, once
    failed a 1-day drift job with "counts must be non-negative")."""
    rng = np.random.default_rng(7)
    reference = Reference.from_frame(pd.DataFrame({"items": rng.integers(0, 4, 5000) * 1.0}))
    layout = ProfileLayout([reference.features["items"]])
    vector = layout.count_frame(pd.DataFrame({"items": rng.integers(0, 4, 2000) * 1.0}))
    numerical = reference.features["items"]
    assert isinstance(numerical, NumericalReference)
    assert numerical.discrete
    block = layout.blocks[0]
    fractions = [k / 61 for k in range(1, 200)]
    windows = [block.counts(vector * f) for f in fractions]
    residues = [c.sum() - c[numerical.atom_slots].sum() for c in windows]
    assert min(residues) < 0, "no fraction rounds below zero here: choose others"
    assert all((numerical.atom_counts(c) >= 0).all() for c in windows), "a negative count"
    for fraction in fractions[::20]:
        test = profile_drift(layout, vector * fraction, DriftConfig()).features[0]
        assert test.method == "chi2"
        assert test.p_value is not None
        assert 0.0 <= test.p_value <= 1.0
