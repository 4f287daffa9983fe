"""The share of missing values as a tested quantity: did it change between the two samples?

A 2×2 table (missing, present) × (reference, window): chi-square with Yates' correction when
every expected count is at least 5, else Fisher's exact test (a window of 80 rows against a
reference without any missing value is the usual case). The effect size is the absolute
difference of the two shares, so a materiality of 0.1 means "ten percentage points".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.monitor.drift.chi2 import chi2_counts
from driftloop.monitor.drift.pooling import MIN_EXPECTED

__all__ = ["MissingShare", "missing_share"]


@dataclass(frozen=True)
class MissingShare:
    """The missing shares of both samples and the test of their difference."""

    reference_share: float
    share: float
    p_value: float
    rows: int
    method: str

    @property
    def effect_size(self) -> float:
        """Absolute difference of the two shares."""
        return abs(self.share - self.reference_share)

    def as_dict(self) -> dict[str, Any]:
        """The shares, p-value and method, for stored results."""
        return {
            "reference_share": self.reference_share,
            "share": self.share,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "rows": self.rows,
            "method": self.method,
        }


def missing_share(
    ref_missing: float, ref_rows: float, cur_missing: float, cur_rows: float
) -> MissingShare | None:
    """Test of the missing share; None when either sample is empty or neither misses a value."""
    if ref_rows <= 0 or cur_rows <= 0 or (ref_missing <= 0 and cur_missing <= 0):
        return None
    ref = np.array([ref_missing, ref_rows - ref_missing], dtype=np.float64)
    cur = np.array([cur_missing, cur_rows - cur_missing], dtype=np.float64)
    column = ref + cur
    expected = column * (min(ref_rows, cur_rows) / (ref_rows + cur_rows))
    if (expected >= MIN_EXPECTED).all():
        _, p = chi2_counts(ref, cur)
        method = "chi2"
    else:
        # Imported here: scipy.stats costs more to import than the rest of the drift math, and
        # only a rare missing share in a small window needs it.
        from scipy.stats import fisher_exact

        table = np.rint(np.stack([ref, cur])).astype(np.int64)
        p = float(fisher_exact(table).pvalue)
        method = "fisher"
    return MissingShare(
        reference_share=float(ref_missing / ref_rows),
        share=float(cur_missing / cur_rows),
        p_value=float(min(1.0, max(0.0, p))),
        rows=round(cur_rows),
        method=method,
    )
