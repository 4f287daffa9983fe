"""Jensen–Shannon distance (base 2, so it lies in [0, 1]) between two count vectors."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["js_distance"]


def js_distance(ref_counts: NDArray[np.floating], cur_counts: NDArray[np.floating]) -> float:
    """``sqrt(JSD)`` of the two share vectors, with logarithms in base 2; 0 when equal."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.shape != cur.shape:
        raise ValueError(f"count vectors must be aligned, got {ref.shape} and {cur.shape}")
    n, m = float(ref.sum()), float(cur.sum())
    if n <= 0 or m <= 0:
        raise ValueError(f"Jensen-Shannon needs two non-empty samples, got {n:g} and {m:g}")
    p, q = ref / n, cur / m
    mid = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / mid[nz])).sum())

    value = (kl(p) + kl(q)) / 2
    return math.sqrt(min(1.0, max(0.0, value)))
