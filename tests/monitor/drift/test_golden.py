"""Golden cases: every statistic equals SciPy's on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftloop.monitor.drift import (
    benjamini_hochberg,
    chi2_counts,
    js_distance,
    ks_pvalue,
    ks_statistic,
    wasserstein_sorted,
)

RNG = np.random.default_rng(20261122)

KS_CASES = {
    "equal-sizes": (RNG.normal(size=2000), RNG.normal(0.1, 1, size=2000)),
    "unequal-sizes": (RNG.normal(size=5000), RNG.normal(0.05, 1.2, size=700)),
    "tiny": (RNG.normal(size=9), RNG.normal(1, 1, size=4)),
    "ties-inside-and-across": (
        np.round(RNG.normal(size=3000) * 2),
        np.round(RNG.normal(0.2, 1, size=1500) * 2),
    ),
    "constant-vs-spread": (np.zeros(50), RNG.normal(size=80)),
    "large-drifted": (RNG.normal(size=60_000), RNG.normal(0.02, 1, size=60_000)),
    "large-same": (RNG.normal(size=40_000), RNG.normal(size=45_000)),
    "disjoint": (RNG.uniform(0, 1, 300), RNG.uniform(2, 3, 200)),
}


@pytest.mark.parametrize(("ref", "cur"), KS_CASES.values(), ids=KS_CASES.keys())
def test_ks_matches_scipy_asymptotic(ref: np.ndarray, cur: np.ndarray) -> None:
    expected = stats.ks_2samp(ref, cur, method="asymp")
    d, _ = ks_statistic(np.sort(ref), np.sort(cur))
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert ks_pvalue(d, ref.size, cur.size) == pytest.approx(expected.pvalue, abs=1e-9)


@pytest.mark.parametrize("en", [1_500, 30_000, 120_000])
@pytest.mark.parametrize("nxx", [0.5, 2.3, 9.0, 60.0])
def test_ks_pvalue_matches_scipy_where_scipy_is_slow(en: int, nxx: float) -> None:
    d = float(np.sqrt(nxx / en))
    assert ks_pvalue(d, 2 * en, 2 * en) == pytest.approx(stats.kstwo.sf(d, en), abs=1e-10)


def test_ks_refuses_empty_samples() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ks_statistic(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-empty"):
        ks_pvalue(0.1, 0, 3)


CHI2_CASES = {
    "two-categories-yates": ([120, 80, 0], [50, 70, 0]),
    "many-categories": ([500, 300, 150, 50, 0], [420, 330, 160, 70, 0]),
    "unseen-bucket": ([400, 300, 300, 0], [380, 290, 280, 50]),
    "category-vanished": ([100, 100, 100, 0], [150, 0, 150, 0]),
    "small-counts": ([3, 5, 2, 0], [1, 6, 4, 2]),
}


@pytest.mark.parametrize(("ref", "cur"), CHI2_CASES.values(), ids=CHI2_CASES.keys())
def test_chi2_matches_scipy_contingency(ref: list[int], cur: list[int]) -> None:
    table = np.array([ref, cur], dtype=float)
    table = table[:, table.sum(axis=0) > 0]  # SciPy refuses empty columns; we drop them
    expected = stats.chi2_contingency(table)
    stat, p = chi2_counts(np.array(ref, float), np.array(cur, float))
    assert stat == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)


def test_chi2_with_a_single_nonempty_category_is_no_evidence() -> None:
    assert chi2_counts(np.array([5.0, 0.0]), np.array([7.0, 0.0])) == (0.0, 1.0)


def test_chi2_refuses_misaligned_or_negative_counts() -> None:
    with pytest.raises(ValueError, match="aligned"):
        chi2_counts(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        chi2_counts(np.array([1.0, -2.0]), np.array([1.0, 1.0]))


@pytest.mark.parametrize(("ref", "cur"), KS_CASES.values(), ids=KS_CASES.keys())
def test_wasserstein_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    data = np.sort(ref)
    mean = float(data.mean())
    prefix = np.concatenate([[0.0], np.cumsum(data - mean)])
    got = wasserstein_sorted(data, prefix, mean, np.sort(cur))
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("ref", "cur"), CHI2_CASES.values(), ids=CHI2_CASES.keys())
def test_jensen_shannon_matches_scipy_base_2(ref: list[int], cur: list[int]) -> None:
    expected = jensenshannon(np.array(ref, float), np.array(cur, float), base=2)
    assert js_distance(np.array(ref, float), np.array(cur, float)) == pytest.approx(
        expected, abs=1e-12
    )


def test_benjamini_hochberg_matches_scipy_and_keeps_nan() -> None:
    p = RNG.uniform(size=40) ** 3
    np.testing.assert_allclose(
        benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"), atol=1e-15
    )
    mixed = benjamini_hochberg([0.01, np.nan, 0.04])
    assert np.isnan(mixed[1])
    np.testing.assert_allclose(mixed[[0, 2]], stats.false_discovery_control([0.01, 0.04]))


def test_benjamini_hochberg_refuses_probabilities_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.2, 1.5])
