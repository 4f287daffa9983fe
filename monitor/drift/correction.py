"""Benjamini–Hochberg adjustment of p-values across the features of one comparison."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["benjamini_hochberg"]


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """BH-adjusted p-values (same order as given); NaN entries stay NaN and are not counted.

    Equal to ``scipy.stats.false_discovery_control(p, method="bh")`` on the finite entries.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p-values must be a 1-D array, got shape {p.shape}")
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    values = p[finite]
    k = values.size
    if k == 0:
        return out
    order = np.argsort(values)
    scaled = values[order] * k / np.arange(1, k + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(k)
    result[order] = np.minimum(adjusted, 1.0)
    out[finite] = result
    return out
