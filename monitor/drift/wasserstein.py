"""Wasserstein-1 distance, normalised by the reference standard deviation.

``W1 = ∫ |Q_ref(u) - Q_cur(u)| du`` over quantile functions. With the reference sorted once and its
(mean-centred) prefix sums cached, the integral over each current value's share of ``u`` is a
closed form in those sums, so the cost is O(m) in the current window instead of a merge of both
samples. ``lo`` (reference values below each current value) comes from the KS search.

Callers divide by the reference spread (``NumericalReference.spread``: the standard deviation as
Evidently does, unless IQR/1.349 is smaller, floored relative to the data's magnitude), so a
threshold of 0.1 means the same thing as in Evidently on well-behaved data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["wasserstein_binned", "wasserstein_sorted"]


def wasserstein_sorted(
    ref_sorted: NDArray[np.floating],
    ref_prefix: NDArray[np.float64] | Callable[[], NDArray[np.float64]],
    ref_mean: float,
    cur_sorted: NDArray[np.floating],
    lo: NDArray[np.intp] | None = None,
) -> float:
    """Exact W1 between a sorted reference and a sorted current sample.

    ``ref_prefix`` is ``concatenate([[0], cumsum(ref_sorted - ref_mean)])``, or a function
    returning it (equal sizes never need it); ``lo`` is ``searchsorted(ref_sorted, cur_sorted,
    "left")`` when the caller already has it.
    """
    n, m = ref_sorted.size, cur_sorted.size
    if n == 0 or m == 0:
        raise ValueError(f"Wasserstein needs two non-empty samples, got sizes {n} and {m}")
    if n == m:
        return float(np.abs(ref_sorted - cur_sorted).mean())
    if lo is None:
        lo = np.searchsorted(ref_sorted, cur_sorted, side="left")
    if callable(ref_prefix):
        ref_prefix = ref_prefix()
    c = np.asarray(cur_sorted, dtype=np.float64) - ref_mean
    # Current value j owns u in (j/m, (j+1)/m], i.e. reference index space t in (a_j, b_j] with
    # a_j = j*n/m. With F(t) = ∫_0^t |ref_(ceil(s)-1) - c| ds and split = lo (values below c):
    # F(K + f) = c*(2*min(K, lo) - K) + P[K] - 2*P[min(K, lo)] + f*|ref_K - c|.
    # Summed over j, the P[K] terms telescope to P[n].
    scaled = np.arange(m + 1, dtype=np.int64) * n
    whole = scaled // m
    low_b = np.minimum(whole[1:], lo)
    low_a = np.minimum(whole[:-1], lo)
    weights = 2 * (low_b - low_a) - (whole[1:] - whole[:-1])
    total = float(np.dot(c, weights)) + float(ref_prefix[n])
    total -= 2.0 * float(ref_prefix[low_b].sum() - ref_prefix[low_a].sum())
    frac = (scaled - whole * m) / m
    if frac.any():
        top = np.minimum(whole, n - 1)
        at = np.abs(np.asarray(ref_sorted, dtype=np.float64)[top] - ref_mean - np.append(c, c[-1]))
        at_prev = np.abs(
            np.asarray(ref_sorted, dtype=np.float64)[top] - ref_mean - np.insert(c, 0, c[0])
        )
        # Each inner edge t = a_j ends interval j-1 (current c_{j-1}) and starts interval j.
        total += float(np.dot(frac[1:], at_prev[1:])) - float(np.dot(frac[:-1], at[:-1]))
    return total / n


def wasserstein_binned(
    edges: NDArray[np.float64],
    ref_counts: NDArray[np.float64],
    cur_counts: NDArray[np.float64],
    ref_tails: tuple[float, float],
    cur_tails: tuple[float, float],
) -> float:
    """W1 from counts on common bins: ``∫ |F_ref - F_cur| dx`` with CDFs linear inside each bin.

    ``edges`` are the k+1 finite bin edges; counts have k+2 entries (below, k inside, above);
    ``*_tails`` are the sums of values below the first and above the last edge, which make the
    open-ended outer bins exact.
    """
    n, m = float(ref_counts.sum()), float(cur_counts.sum())
    if n <= 0 or m <= 0:
        raise ValueError(f"Wasserstein needs two non-empty samples, got sizes {n:g} and {m:g}")
    gap = np.cumsum(ref_counts[:-1]) / n - np.cumsum(cur_counts[:-1]) / m  # at each edge
    widths = np.diff(edges)
    # Inside a bin the gap moves linearly from one edge value to the next.
    a, b = gap[:-1], gap[1:]
    same = np.sign(a) * np.sign(b) >= 0
    safe = np.where(same, 1.0, np.abs(a) + np.abs(b))
    area = np.where(same, (np.abs(a) + np.abs(b)) / 2, (a * a + b * b) / (2 * safe))
    inner = float(np.dot(area, widths))
    lo_edge, hi_edge = float(edges[0]), float(edges[-1])
    below = abs(
        (ref_counts[0] * lo_edge - ref_tails[0]) / n - (cur_counts[0] * lo_edge - cur_tails[0]) / m
    )
    above = abs(
        (ref_tails[1] - ref_counts[-1] * hi_edge) / n
        - (cur_tails[1] - cur_counts[-1] * hi_edge) / m
    )
    return inner + float(below) + float(above)
