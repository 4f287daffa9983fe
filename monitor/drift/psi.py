"""Population stability index on common bins (reference quantile bins, or categories).

``PSI = Σ (q_i - p_i) · ln(q_i / p_i)`` over bin shares, with empty bins lifted to ``EPSILON`` so
that a category appearing or vanishing gives a large finite value instead of infinity.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["EPSILON", "psi_counts"]

EPSILON = 1e-4
"""Share given to an empty bin (the value Evidently and most PSI write-ups use)."""


def psi_counts(ref_counts: NDArray[np.floating], cur_counts: NDArray[np.floating]) -> float:
    """PSI between two count vectors over the same bins; 0 means identical shares."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.shape != cur.shape:
        raise ValueError(f"count vectors must be aligned, got {ref.shape} and {cur.shape}")
    n, m = float(ref.sum()), float(cur.sum())
    if n <= 0 or m <= 0:
        raise ValueError(f"PSI needs two non-empty samples, got sizes {n:g} and {m:g}")
    p = np.maximum(ref / n, EPSILON)
    q = np.maximum(cur / m, EPSILON)
    return float(((q - p) * np.log(q / p)).sum())
