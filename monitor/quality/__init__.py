"""Data quality and the input guard: shares per feature and window, out-of-distribution rules."""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.quality.guard import numeric_bounds, numeric_ood
    from driftloop.monitor.quality.shares import profile_quality

__all__ = ["numeric_bounds", "numeric_ood", "profile_quality"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.quality.guard": ("numeric_bounds", "numeric_ood"),
        "driftloop.monitor.quality.shares": ("profile_quality",),
    },
)
