"""Injected drift is flagged, trivial shifts in huge windows and noise in small ones are not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftloop.contract import FeatureKind
from driftloop.monitor.drift import DriftConfig, FeatureSpec, Reference, compare_frame

CATEGORIES = np.array(["red", "green", "blue", "black"])


def _frame(rng: np.random.Generator, n: int, *, drift: bool) -> pd.DataFrame:
    shares = [0.2, 0.3, 0.3, 0.2] if drift else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame(
        {
            "stable_a": rng.normal(10, 2, n),
            "stable_b": rng.exponential(3, n),
            "mean_shift": rng.normal(0.5 if drift else 0.0, 1, n),
            "variance_change": rng.normal(0, 1.6 if drift else 1.0, n),
            "category_shift": rng.choice(CATEGORIES, n, p=shares),
            "stable_category": rng.choice(CATEGORIES, n, p=[0.25] * 4),
        }
    )


def test_defaults_flag_exactly_the_injected_drifts() -> None:
    rng = np.random.default_rng(7)
    reference = Reference.from_frame(_frame(rng, 5000, drift=False))
    report = compare_frame(reference, _frame(rng, 5000, drift=True), DriftConfig())
    drifted = {f.name for f in report.features if f.drifted}
    assert drifted == {"mean_shift", "variance_change", "category_shift"}
    assert report.drifted_share == pytest.approx(0.5)
    assert report.dataset_drift
    assert report.feature("category_shift").method == "chi2"
    assert report.feature("mean_shift").method == "ks"


@pytest.mark.slow
def test_a_trivial_shift_in_a_million_rows_is_significant_but_not_material() -> None:
    rng = np.random.default_rng(11)
    n = 1_000_000
    reference = Reference.from_frame(pd.DataFrame({"x": rng.normal(0, 1, n)}))
    report = compare_frame(reference, pd.DataFrame({"x": rng.normal(0.05, 1, n)}), DriftConfig())
    feature = report.features[0]
    assert feature.p_adjusted is not None
    assert feature.p_adjusted < 1e-10
    assert feature.effect_size is not None
    assert feature.effect_size < 0.1
    assert not feature.drifted
    assert not report.dataset_drift


def test_noise_in_small_windows_flags_no_more_often_than_alpha() -> None:
    rng = np.random.default_rng(3)
    trials, features, n = 200, 10, 500
    any_flag = 0
    raw_rejections = 0
    for _ in range(trials):
        ref = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(features)})
        cur = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(features)})
        report = compare_frame(Reference.from_frame(ref), cur, DriftConfig())
        any_flag += report.dataset_drift or any(f.drifted for f in report.features)
        raw_rejections += sum(f.p_value is not None and f.p_value < 0.05 for f in report.features)
    # BH keeps the chance of any false flag at alpha under pure noise; allow sampling error
    # of the estimate (one-sided 99%: 2.33 standard errors).
    alpha = 0.05
    assert any_flag / trials <= alpha + 2.33 * math.sqrt(alpha * (1 - alpha) / trials)
    # The unadjusted tests do fire at about their nominal rate: the guard is BH + materiality.
    assert 0.01 <= raw_rejections / (trials * features) <= 0.08


def test_materiality_and_alpha_are_configurable_per_feature_and_model() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 4000), "y": rng.normal(0, 1, 4000)})
    cur = pd.DataFrame({"x": rng.normal(0.25, 1, 4000), "y": rng.normal(0.25, 1, 4000)})
    specs = [
        FeatureSpec("x", FeatureKind.numerical),
        FeatureSpec("y", FeatureKind.numerical, materiality=0.5),
    ]
    report = compare_frame(Reference.from_frame(ref, specs), cur, DriftConfig())
    assert report.feature("x").drifted
    assert not report.feature("y").drifted  # same shift, stricter threshold
    strict = compare_frame(Reference.from_frame(ref, specs), cur, DriftConfig(alpha=1e-300))
    assert not strict.feature("x").drifted
