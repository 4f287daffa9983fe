"""The input guard: which values are out of distribution for a model.

A number is out of distribution when it lies beyond the reference range widened by ``margin`` times
that range on each side (for a constant reference, ``margin`` times its magnitude, at least 1); a
category is when the reference never saw it; a value of the wrong type always is. Missing values
are not: they are a quality problem, counted separately. A record is flagged when any feature is.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from driftloop.monitor.drift.reference import NumericalReference

__all__ = ["numeric_bounds", "numeric_ood"]


def numeric_bounds(ref: NumericalReference, margin: float) -> tuple[float, float]:
    """The interval outside which a number is out of distribution."""
    span = ref.maximum - ref.minimum
    pad = margin * (span if span > 0 else max(abs(ref.maximum), 1.0))
    return ref.minimum - pad, ref.maximum + pad


def numeric_ood(
    ref: NumericalReference, margin: float, values: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Which ``values`` are out of distribution (NaN, i.e. missing, never is)."""
    lo, hi = numeric_bounds(ref, margin)
    with np.errstate(invalid="ignore"):
        return (values < lo) | (values > hi)
