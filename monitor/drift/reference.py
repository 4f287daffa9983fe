"""Reference statistics, computed once per reference dataset and reused by every comparison.

A numerical reference keeps its sorted values (for the exact KS statistic), mean-centred prefix
sums (for the O(m) Wasserstein distance), spread, range, and the bin edges that both the PSI
and the online profiles count on. The edges are the reference's percentiles, deduplicated, plus a
bin of its own for every heavily tied value (an *atom*: at least 1 % of the reference, or every
value of a discrete feature), so a 0/1 flag keeps its 0s and 1s apart online as it does raw.
A feature with at most :data:`DISCRETE_MAX_VALUES` distinct values, each seen
:data:`DISCRETE_MIN_REPEATS` times on average, is *discrete*: it is tested as categorical (its
values are the categories), where the asymptotic KS test has almost no size and little power.
A categorical reference keeps its category table. Category values are compared by
:func:`category_key`, so ``1``, ``1.0`` and ``"1"`` are one category whether they came from a
CSV file, a Parquet file or a JSON record.
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
    "DISCRETE_MAX_VALUES",
    "DISCRETE_MIN_REPEATS",
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

DISCRETE_MAX_VALUES = 20
"""A numerical feature with at most this many distinct reference values may be discrete."""
DISCRETE_MIN_REPEATS = 5
"""... when its reference has at least this many rows per distinct value."""
_ATOM_SHARE = 1.0 / PROFILE_BINS
"""A value holding at least this share of the reference gets a profile bin of its own."""


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
    deciles: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    atoms: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    discrete: bool = False
    spread: float = 1.0
    kind: FeatureKind = field(default=FeatureKind.numerical, init=False)

    @property
    def size(self) -> int:
        """Number of non-missing reference values."""
        return int(self.sorted.size)

    @cached_property
    def atom_slots(self) -> NDArray[np.intp]:
        """The profile slot of each atom (each holds that value alone)."""
        return bin_index(self.edges, self.atoms)

    @cached_property
    def decile_slots(self) -> NDArray[np.intp]:
        """The PSI decile (0..9) of each profile slot, by the slot's lower edge."""
        lower = np.searchsorted(self.deciles, self.edges, side="right")
        return np.concatenate([[0], lower[:-1], [self.deciles.size]]).astype(np.intp)

    def atom_counts(self, counts: NDArray[np.float64]) -> NDArray[np.float64]:
        """Profile-slot counts folded to one count per atom plus one for every other value.

        Counts summed from buckets that a window covers in part are fractions, and the rest
        then rounds to a tiny negative number when every value sits on an atom: clipped at 0.
        """
        on_atoms = counts[self.atom_slots]
        return np.append(on_atoms, max(float(counts.sum() - on_atoms.sum()), 0.0))

    def sorted_atom_counts(self, cur_sorted: NDArray[np.floating]) -> NDArray[np.float64]:
        """Counts of a sorted sample on each atom plus one for every other value."""
        lo = np.searchsorted(cur_sorted, self.atoms, side="left")
        hi = np.searchsorted(cur_sorted, self.atoms, side="right")
        on_atoms = (hi - lo).astype(np.float64)
        return np.append(on_atoms, cur_sorted.size - on_atoms.sum())

    @cached_property
    def prefix(self) -> NDArray[np.float64]:
        """``[0, cumsum(sorted - mean)]``: made on first use (equal-size windows never need it)."""
        out = np.empty(self.sorted.size + 1)
        out[0] = 0.0
        np.cumsum(self.sorted - self.mean, out=out[1:])
        return out

    def psi_counts(self, counts: NDArray[np.float64]) -> NDArray[np.float64]:
        """Fold profile-slot counts (k+2 slots) into the 10 decile bins PSI compares."""
        folded = np.bincount(self.decile_slots, weights=counts, minlength=self.deciles.size + 1)
        return folded.astype(np.float64, copy=False)

    def decile_counts(self, cur_sorted: NDArray[np.floating]) -> NDArray[np.float64]:
        """Counts of a sorted sample in the decile bins (-inf, q10), [q10, q20), ..., [q90, inf)."""
        cuts = np.searchsorted(cur_sorted, self.deciles, side="left")
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
    grid = sorted_quantiles(data, np.linspace(0.0, 1.0, PROFILE_BINS + 1))
    change = data[1:] != data[:-1]
    distinct = int(np.count_nonzero(change)) + 1
    discrete = distinct <= DISCRETE_MAX_VALUES and data.size >= DISCRETE_MIN_REPEATS * distinct
    if discrete:
        atoms = data[np.concatenate([[0], np.flatnonzero(change) + 1])]
    else:
        # A value holding >= 1 % of the sorted data spans a grid point: only those can be atoms.
        candidates = np.unique(grid)
        repeats = np.searchsorted(data, candidates, side="right") - np.searchsorted(
            data, candidates, side="left"
        )
        atoms = candidates[(repeats >= 2) & (repeats >= _ATOM_SHARE * data.size)]
    # Each atom a owns [a, nextafter(a)): only a itself falls in it.
    edges = np.unique(np.concatenate([grid, atoms, np.nextafter(atoms, np.inf)]))
    if edges.size == 1:  # one value seen once: still one bin for it
        edges = np.append(edges, np.nextafter(edges[0], np.inf))
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
        deciles=grid[_PSI_STEP:-1:_PSI_STEP].copy(),
        atoms=atoms,
        discrete=bool(discrete),
        spread=robust_spread(data, grid, float(data.std())),
    )


def robust_spread(data: NDArray[np.float64], grid: NDArray[np.float64], std: float) -> float:
    """The scale effect sizes are divided by: the smaller of the standard deviation and
    IQR/1.349 (equal for normal data; a heavy tail no longer hides a shift of the bulk), floored
    relative to the data's magnitude (a spread of 1e-5 is a spread, not rounding noise)."""
    iqr = float(grid[3 * PROFILE_BINS // 4] - grid[PROFILE_BINS // 4])
    spread = min(std, iqr / 1.349) if iqr > 0 else std
    magnitude = max(abs(float(data[0])), abs(float(data[-1])))
    return max(spread, 1e-9 * magnitude, 1e-12)


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
