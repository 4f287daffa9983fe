"""Reference statistics, computed once per reference dataset and reused by every comparison.

A numerical reference keeps its sorted values (for the exact KS statistic), mean-centred prefix
sums (for the O(m) Wasserstein distance), spread, range, and the quantile edges that both the PSI
and the online profiles count on. A categorical reference keeps its category table. Category
values are compared by :func:`category_key`, so ``1``, ``1.0`` and ``"1"`` are one category
whether they came from a CSV file, a Parquet file or a JSON record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftloop.contract import FeatureKind

__all__ = [
    "PROFILE_BINS",
    "CategoricalReference",
    "NumericalReference",
    "bin_index",
    "categorical_reference",
    "category_key",
    "numerical_reference",
    "sorted_counts",
    "sorted_quantiles",
]

PROFILE_BINS = 100
"""Quantile bins per numerical feature; PSI uses every tenth edge (deciles) of the same grid."""

_PSI_STEP = PROFILE_BINS // 10


def category_key(value: Any) -> str:
    """The canonical text of a category value (integral floats lose their ``.0``)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if (
        isinstance(value, float | np.floating)
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def bin_index(edges: NDArray[np.float64], values: NDArray[np.floating]) -> NDArray[np.intp]:
    """Profile slot of each value: 0 below the reference, 1..k inside, k+1 above it."""
    idx = np.searchsorted(edges, values, side="right")
    idx[values == edges[-1]] = edges.size - 1
    return idx


def sorted_counts(edges: NDArray[np.float64], data: NDArray[np.float64]) -> NDArray[np.float64]:
    """Profile-slot counts of already sorted values; equal to ``bincount(bin_index(...))``."""
    below = np.searchsorted(data, edges, side="left")
    out = np.empty(edges.size + 1, dtype=np.float64)
    out[0] = below[0]
    out[1:-2] = np.diff(below[:-1])
    top = int(np.searchsorted(data, edges[-1], side="right"))
    out[-2] = top - below[-2]
    out[-1] = data.size - top
    return out


def sorted_quantiles(data: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linear-interpolation quantiles of sorted ``data`` (no re-partitioning)."""
    position = q * (data.size - 1)
    lo = np.floor(position).astype(np.intp)
    hi = np.minimum(lo + 1, data.size - 1)
    return data[lo] + (data[hi] - data[lo]) * (position - lo)


@dataclass(frozen=True, eq=False)
class NumericalReference:
    """What a numerical feature's comparisons need from the reference, computed once."""

    name: str
    sorted: NDArray[np.float64]
    mean: float
    std: float
    minimum: float
    maximum: float
    edges: NDArray[np.float64]
    counts: NDArray[np.float64]
    rows: int
    missing: int
    kind: FeatureKind = field(default=FeatureKind.numerical, init=False)

    @property
    def size(self) -> int:
        """Number of non-missing reference values."""
        return int(self.sorted.size)

    @cached_property
    def prefix(self) -> NDArray[np.float64]:
        """``[0, cumsum(sorted - mean)]``: made on first use (equal-size windows never need it)."""
        out = np.empty(self.sorted.size + 1)
        out[0] = 0.0
        np.cumsum(self.sorted - self.mean, out=out[1:])
        return out

    def psi_counts(self, counts: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fold profile-slot counts (k+2 slots) into the 10 decile bins PSI compares."""
        inner = counts[1:-1].reshape(10, _PSI_STEP).sum(axis=1)
        inner[0] += counts[0]
        inner[-1] += counts[-1]
        return inner

    def decile_counts(self, cur_sorted: NDArray[np.floating]) -> NDArray[np.float64]:
        """Counts of a sorted sample in the decile bins (-inf, q10), [q10, q20), ..., [q90, inf)."""
        cuts = np.searchsorted(cur_sorted, self.edges[_PSI_STEP:-1:_PSI_STEP], side="left")
        bounds = np.concatenate([[0], cuts, [cur_sorted.size]])
        return np.diff(bounds).astype(np.float64)


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """A categorical feature's reference table; the last count slot is the unseen bucket."""

    name: str
    categories: tuple[str, ...]
    counts: NDArray[np.float64]
    rows: int
    missing: int
    kind: FeatureKind = field(default=FeatureKind.categorical, init=False)
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.categories)})

    @property
    def size(self) -> int:
        """Number of non-missing reference values."""
        return int(self.counts.sum())

    def count(
        self, values: Mapping[Any, float] | Iterable[tuple[Any, float]]
    ) -> NDArray[np.float64]:
        """Counts aligned with the reference categories from ``{value: count}`` pairs."""
        out = np.zeros(len(self.categories) + 1)
        items = values.items() if isinstance(values, Mapping) else values
        unseen = len(self.categories)
        for value, count in items:
            out[self.index.get(category_key(value), unseen)] += count
        return out


def numerical_reference(
    name: str, values: NDArray[np.floating], rows: int | None = None
) -> NumericalReference:
    """Prepare a numerical feature's reference from its values (NaN counts as missing)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    valid = int(np.searchsorted(data, np.nan))  # NaN sorts last
    data = data[:valid]
    total = int(rows if rows is not None else np.asarray(values).size)
    if valid == 0:
        raise ValueError(f"feature {name!r}: the reference has no numeric values")
    mean = float(data.mean())
    edges = sorted_quantiles(data, np.linspace(0.0, 1.0, PROFILE_BINS + 1))
    counts = sorted_counts(edges, data)
    return NumericalReference(
        name=name,
        sorted=data,
        mean=mean,
        std=float(data.std()),
        minimum=float(data[0]),
        maximum=float(data[-1]),
        edges=edges,
        counts=counts,
        rows=total,
        missing=total - valid,
    )


def categorical_reference(
    name: str, value_counts: Mapping[Any, float], rows: int, missing: int
) -> CategoricalReference:
    """Prepare a categorical feature's reference from ``{value: count}`` (missing excluded)."""
    merged: dict[str, float] = {}
    for value, count in value_counts.items():
        key = category_key(value)
        merged[key] = merged.get(key, 0.0) + float(count)
    categories = tuple(sorted(k for k, v in merged.items() if v > 0))
    if not categories:
        raise ValueError(f"feature {name!r}: the reference has no values")
    counts = np.array([merged[c] for c in categories] + [0.0])
    return CategoricalReference(
        name=name, categories=categories, counts=counts, rows=rows, missing=missing
    )
