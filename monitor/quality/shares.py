"""Data quality of a window from its profile vector, next to the reference's own shares.

Per feature: missing, type errors (a number that is not a number, a category that is an object),
out-of-distribution values; numbers also report values outside the reference range and the mean,
categories the share of values the reference never saw. Shares are of the window's records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from driftloop.contract import FeatureKind

if TYPE_CHECKING:
    from driftloop.monitor.profiles.layout import ProfileLayout

__all__ = ["profile_quality"]


def profile_quality(layout: ProfileLayout, vector: NDArray[np.float64]) -> dict[str, Any]:
    """Shares per feature and for the whole window: missing, type errors, unseen, out of range."""
    records = float(vector[0])
    per = max(records, 1.0)
    features: dict[str, dict[str, float | None]] = {}
    prediction: dict[str, float | None] | None = None
    for block in layout.blocks:
        counts = block.counts(vector)
        entry = {
            "missing_ratio": block.extra(vector, "missing") / per,
            "type_errors_ratio": block.extra(vector, "type_errors") / per,
            "ood_ratio": block.extra(vector, "ood") / per,
        }
        if block.kind is FeatureKind.numerical:
            entry["out_of_range_ratio"] = float(counts[0] + counts[-1]) / per
            present = float(counts.sum())
            entry["mean"] = block.extra(vector, "sum") / present if present else float("nan")
            ref = block.ref
            entry["reference_missing_ratio"] = ref.missing / ref.rows if ref.rows else 0.0
        else:
            entry["unseen_ratio"] = float(counts[-1]) / per
            entry["reference_missing_ratio"] = (
                block.ref.missing / block.ref.rows if block.ref.rows else 0.0
            )
        clean = {k: (None if np.isnan(v) else v) for k, v in entry.items()}
        if block.role == "feature":
            features[block.name] = clean
        else:
            prediction = clean
    return {
        "records": int(records),
        "ood_records_ratio": float(vector[1]) / per,
        "features": features,
        "prediction": prediction,
    }
