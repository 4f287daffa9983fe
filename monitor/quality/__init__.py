"""Data quality and the input guard: shares per feature and window, out-of-distribution rules."""

from driftloop.monitor.quality.guard import numeric_bounds, numeric_ood
from driftloop.monitor.quality.shares import profile_quality

__all__ = ["numeric_bounds", "numeric_ood", "profile_quality"]
