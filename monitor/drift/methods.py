"""The table of drift methods and the per-feature comparison behind each.

Every comparison computes the statistics its kind reports (numerical: KS, normalised Wasserstein,
PSI; categorical: chi-square, Jensen–Shannon, PSI); the method picks which one is the test
statistic, whether it has a p-value, and what the effect size is. Test methods (``ks``, ``chi2``)
use the kind's effect size (normalised Wasserstein for numbers, Jensen–Shannon distance for
categories); distance methods are their own effect size and have no p-value.

Discrete numbers (a flag, a count with a handful of values; see ``NumericalReference.discrete``)
are tested with ``chi2`` on their values by default: the asymptotic KS test is far too
conservative on them. Their effect size stays the normalised Wasserstein distance. Chi-square
tests pool sparse categories first (:func:`~driftloop.monitor.drift.pooling.pool_sparse`), and
the Jensen–Shannon distance is taken on the same pooled counts, so noise in categories too rare
to test does not pass for a material change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from driftloop.contract import FeatureKind
from driftloop.errors import ConfigurationError
from driftloop.monitor.drift.chi2 import chi2_counts
from driftloop.monitor.drift.jensen_shannon import js_distance
from driftloop.monitor.drift.ks import ks_binned, ks_pvalue, ks_statistic
from driftloop.monitor.drift.pooling import pool_sparse
from driftloop.monitor.drift.psi import psi_counts
from driftloop.monitor.drift.reference import NumericalReference
from driftloop.monitor.drift.wasserstein import wasserstein_binned, wasserstein_sorted

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "DriftMethod",
    "Measures",
    "categorical_measures",
    "numerical_binned_measures",
    "numerical_measures",
    "resolve_method",
]


@dataclass(frozen=True)
class Measures:
    """Every statistic one comparison of one feature produced."""

    test_statistic: float
    p_value: float
    distance: float
    psi: float
    current_rows: int


@dataclass(frozen=True)
class DriftMethod:
    """A named way of deciding drift: which statistic, whether it has a p-value, the effect."""

    name: str
    kinds: frozenset[FeatureKind]
    has_p_value: bool
    statistic: Callable[[Measures], float]
    description: str

    def effect_size(self, measures: Measures) -> float:
        """The effect size compared with the materiality threshold."""
        return measures.distance if self.has_p_value else self.statistic(measures)


METHODS: dict[str, DriftMethod] = {
    "ks": DriftMethod(
        "ks",
        frozenset({FeatureKind.numerical}),
        True,
        lambda m: m.test_statistic,
        "two-sample Kolmogorov-Smirnov, exact statistic, asymptotic p-value",
    ),
    "chi2": DriftMethod(
        "chi2",
        frozenset({FeatureKind.categorical, FeatureKind.numerical}),
        True,
        lambda m: m.test_statistic,
        "chi-square test of homogeneity, sparse categories (unseen included) pooled to an "
        "expected count of 5; on numbers, for discrete features only (their values)",
    ),
    "psi": DriftMethod(
        "psi",
        frozenset({FeatureKind.numerical, FeatureKind.categorical}),
        False,
        lambda m: m.psi,
        "population stability index (reference deciles, or categories)",
    ),
    "wasserstein": DriftMethod(
        "wasserstein",
        frozenset({FeatureKind.numerical}),
        False,
        lambda m: m.distance,
        "Wasserstein-1 distance divided by the reference standard deviation",
    ),
    "jensen_shannon": DriftMethod(
        "jensen_shannon",
        frozenset({FeatureKind.categorical}),
        False,
        lambda m: m.distance,
        "Jensen-Shannon distance (base 2) of category shares",
    ),
}
"""Every drift method, by the name used in schemas, settings and metric labels."""

DEFAULT_METHODS = {FeatureKind.numerical: "ks", FeatureKind.categorical: "chi2"}
"""The method used when neither the feature nor the model names one."""


def resolve_method(kind: FeatureKind, name: str | None, *, discrete: bool = False) -> DriftMethod:
    """The method called ``name`` (or the kind's default), checked against the feature kind.

    ``discrete``: the numerical feature's reference is discrete, so its default is ``chi2``.
    """
    default = "chi2" if discrete and kind is FeatureKind.numerical else DEFAULT_METHODS[kind]
    chosen = name or default
    method = METHODS.get(chosen)
    if method is None:
        raise ConfigurationError(
            f"unknown drift method {chosen!r}; known methods: {', '.join(sorted(METHODS))}"
        )
    if kind not in method.kinds:
        raise ConfigurationError(f"drift method {chosen!r} does not apply to {kind.value} features")
    if kind is FeatureKind.numerical and chosen == "chi2" and not discrete:
        raise ConfigurationError(
            "drift method 'chi2' applies to a numerical feature only when it is discrete "
            "(at most 20 distinct reference values)"
        )
    return method


def _pooled_chi2(
    base: NDArray[np.float64], cur: NDArray[np.float64]
) -> tuple[float, float, NDArray[np.float64], NDArray[np.float64]]:
    ref_pooled, cur_pooled = pool_sparse(base, cur)
    stat, p = chi2_counts(ref_pooled, cur_pooled)
    return stat, p, ref_pooled, cur_pooled


def numerical_measures(
    ref: NumericalReference, cur_sorted: NDArray[np.float64], *, discrete: bool = False
) -> Measures:
    """Exact KS (or, ``discrete``, chi-square on the values), normalised Wasserstein and decile
    PSI of a sorted, NaN-free current sample."""
    d, lo = ks_statistic(ref.sorted, cur_sorted)
    w = wasserstein_sorted(ref.sorted, lambda: ref.prefix, ref.mean, cur_sorted, lo)
    psi = psi_counts(ref.psi_counts(ref.counts), ref.decile_counts(cur_sorted))
    if discrete:
        stat, p, _, _ = _pooled_chi2(
            ref.atom_counts(ref.counts), ref.sorted_atom_counts(cur_sorted)
        )
    else:
        stat, p = d, ks_pvalue(d, ref.size, int(cur_sorted.size))
    return Measures(
        test_statistic=stat,
        p_value=p,
        distance=w / ref.spread,
        psi=psi,
        current_rows=int(cur_sorted.size),
    )


def numerical_binned_measures(
    ref: NumericalReference,
    base_counts: NDArray[np.float64],
    base_tails: tuple[float, float],
    cur_counts: NDArray[np.float64],
    cur_tails: tuple[float, float],
    *,
    discrete: bool = False,
) -> Measures:
    """The same measures from profile-slot counts (binned KS, interpolated Wasserstein); a
    discrete feature's atoms have bins of their own, so its chi-square equals the raw one."""
    if discrete:
        stat, p, _, _ = _pooled_chi2(ref.atom_counts(base_counts), ref.atom_counts(cur_counts))
    else:
        stat, p = ks_binned(base_counts, cur_counts)
    w = wasserstein_binned(ref.edges, base_counts, cur_counts, base_tails, cur_tails)
    psi = psi_counts(ref.psi_counts(base_counts), ref.psi_counts(cur_counts))
    return Measures(stat, p, w / ref.spread, psi, round(cur_counts.sum()))


def categorical_measures(
    base_counts: NDArray[np.float64], cur_counts: NDArray[np.float64]
) -> Measures:
    """Chi-square (sparse categories pooled), Jensen–Shannon on the same pooled counts, and PSI
    of aligned category counts (last slot: unseen)."""
    stat, p, ref_pooled, cur_pooled = _pooled_chi2(base_counts, cur_counts)
    return Measures(
        test_statistic=stat,
        p_value=p,
        distance=js_distance(ref_pooled, cur_pooled),
        psi=psi_counts(base_counts, cur_counts),
        current_rows=round(cur_counts.sum()),
    )
