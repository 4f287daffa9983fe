"""Pooling of sparse categories so that a chi-square test stays valid.

The chi-square approximation needs every expected count of the 2×k table to be at least about 5.
Categories below that in either sample (the reference or the window) are pooled into one "other"
column, the unseen bucket included (it is empty in the reference by construction, so on its own
it would never be testable). When "other" itself stays below the minimum it is merged with the
smallest remaining category, until it passes or one column is left (then there is nothing to
test). Pooling only merges columns, so the test keeps its size on sparse data (Zipf over 200
categories, windows of 80 rows) and still sees a new category that takes a real share.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["MIN_EXPECTED", "pool_sparse"]

MIN_EXPECTED = 5.0
"""Smallest expected count a column of the table may have."""


def pool_sparse(
    ref_counts: NDArray[np.floating],
    cur_counts: NDArray[np.floating],
    min_expected: float = MIN_EXPECTED,
    *,
    unseen_last: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The two count vectors with sparse columns pooled (the last column is "other" when any
    column was pooled); unchanged when every expected count reaches ``min_expected``.

    ``unseen_last``: the last column is the unseen bucket and always joins "other" (the
    reference's categories are the ones it happened to see, so the bucket alone is biased).
    """
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    n, m = float(ref.sum()), float(cur.sum())
    if n <= 0 or m <= 0:
        return ref, cur
    column = ref + cur
    # The smaller sample has the smaller expected count in every column.
    expected = column * (min(n, m) / (n + m))
    sparse = expected < min_expected
    if unseen_last and sparse.size > 1 and ref[-1] == 0:
        sparse[-1] = True
    if not sparse.any():
        return ref, cur
    keep = ~sparse
    ref_kept, cur_kept = ref[keep], cur[keep]
    other_ref, other_cur = float(ref[sparse].sum()), float(cur[sparse].sum())
    if other_ref + other_cur == 0:
        return ref_kept, cur_kept  # only empty columns (an unseen bucket nobody used)
    scale = min(n, m) / (n + m)
    order = np.argsort(ref_kept + cur_kept, kind="stable")
    merged = np.zeros(ref_kept.size, dtype=bool)
    for i in order:
        if (other_ref + other_cur) * scale >= min_expected:
            break
        other_ref += ref_kept[i]
        other_cur += cur_kept[i]
        merged[i] = True
    ref_out = np.append(ref_kept[~merged], other_ref)
    cur_out = np.append(cur_kept[~merged], other_cur)
    return ref_out, cur_out
