"""Chi-square test of homogeneity on category counts, with an explicit unseen-category bucket.

The two count vectors (reference, current) form a 2×k contingency table whose last column is
"categories the reference never saw". Columns empty in both samples carry no information and are
dropped (SciPy refuses tables with a zero expected frequency). Yates' continuity correction is
applied when one degree of freedom remains, as ``scipy.stats.chi2_contingency`` does by default,
so the two agree to rounding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import chdtrc

__all__ = ["chi2_counts"]


def chi2_counts(
    ref_counts: NDArray[np.floating], cur_counts: NDArray[np.floating], *, correction: bool = True
) -> tuple[float, float]:
    """Return ``(chi2, p_value)`` for two count vectors over the same categories."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"count vectors must be 1-D and aligned, got {ref.shape} and {cur.shape}")
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("counts must be non-negative")
    n, m = float(ref.sum()), float(cur.sum())
    if n <= 0 or m <= 0:
        raise ValueError(f"chi-square needs two non-empty samples, got sizes {n:g} and {m:g}")
    keep = (ref + cur) > 0
    observed = np.stack([ref[keep], cur[keep]])
    k = observed.shape[1]
    dof = k - 1
    if dof == 0:
        return 0.0, 1.0
    column = observed.sum(axis=0)
    expected = np.outer(np.array([n, m]), column) / (n + m)
    if dof == 1 and correction:
        diff = expected - observed
        observed = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((observed - expected) ** 2 / expected).sum())
    return stat, float(chdtrc(dof, stat))
