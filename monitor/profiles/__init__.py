"""Online drift: per-minute profiles updated at ingest, windows as sums of buckets.

A profile is a float64 vector laid out by :class:`ProfileLayout` (counts on reference quantile
bins, category counts, missing and type-error counts, sums); :class:`ProfileHook` adds each batch
to its minute, hour and day buckets; :func:`read_window` sums a window; :func:`profile_drift`
turns a summed vector into drift results.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.profiles.baselines import BaselineCache
    from driftloop.monitor.profiles.build import ModelBaseline, build_baseline
    from driftloop.monitor.profiles.hook import ProfileHook
    from driftloop.monitor.profiles.layout import Block, ProfileLayout
    from driftloop.monitor.profiles.store import (
        GRAINS,
        add_buckets,
        bucket_start,
        read_window,
        segments,
    )
    from driftloop.monitor.profiles.window import FeatureOverrides, profile_drift

__all__ = [
    "GRAINS",
    "BaselineCache",
    "Block",
    "FeatureOverrides",
    "ModelBaseline",
    "ProfileHook",
    "ProfileLayout",
    "add_buckets",
    "bucket_start",
    "build_baseline",
    "profile_drift",
    "read_window",
    "segments",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.profiles.baselines": ("BaselineCache",),
        "driftloop.monitor.profiles.build": ("ModelBaseline", "build_baseline"),
        "driftloop.monitor.profiles.hook": ("ProfileHook",),
        "driftloop.monitor.profiles.layout": ("Block", "ProfileLayout"),
        "driftloop.monitor.profiles.store": (
            "GRAINS",
            "add_buckets",
            "bucket_start",
            "read_window",
            "segments",
        ),
        "driftloop.monitor.profiles.window": ("FeatureOverrides", "profile_drift"),
    },
)
