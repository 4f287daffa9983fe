"""The public surfaces of the profile, quality and evaluation packages are pinned."""

from __future__ import annotations

from types import ModuleType

import pytest

import driftloop.monitor.evaluation as evaluation
import driftloop.monitor.profiles as profiles
import driftloop.monitor.quality as quality

EXPECTED = {
    profiles: {
        "GRAINS",
        "BaselineCache",
        "Block",
        "FeatureOverrides",
        "ModelBaseline",
        "ProfileHook",
        "ProfileLayout",
        "add_buckets",
        "build_baseline",
        "bucket_start",
        "profile_drift",
        "read_window",
        "segments",
    },
    quality: {"numeric_bounds", "numeric_ood", "profile_quality"},
    evaluation: {
        "METRICS",
        "DriftCollector",
        "Evaluator",
        "drift_section",
        "evaluate_window",
        "evidently_html",
        "install",
        "latest_drift",
        "latest_results",
        "quality_section",
        "window_bounds",
    },
}


@pytest.mark.parametrize("module", list(EXPECTED), ids=lambda m: m.__name__)
def test_exports_are_pinned_and_exist(module: ModuleType) -> None:
    assert set(module.__all__) == EXPECTED[module]
    for name in module.__all__:
        assert hasattr(module, name), name
