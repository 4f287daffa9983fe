"""Drift of a window from its summed profile vector.

Against the reference, a feature's reference counts on the same grid are the baseline (the
reference has nothing outside its own range, so its tail sums are zero); against the previous
window, that window's vector is. The work is O(features × bins) whatever the window's length.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from driftloop.contract import FeatureKind
from driftloop.monitor.drift.decision import DriftConfig, DriftReport, FeatureTest, decide
from driftloop.monitor.drift.methods import (
    DriftMethod,
    Measures,
    categorical_measures,
    numerical_binned_measures,
    resolve_method,
)
from driftloop.monitor.drift.missing import MissingShare, missing_share
from driftloop.monitor.drift.reference import NumericalReference
from driftloop.monitor.profiles.layout import Block, ProfileLayout

__all__ = ["FeatureOverrides", "profile_drift"]

FeatureOverrides = dict[str, tuple[str | None, float | None]]
"""Per-feature ``(method, materiality)`` overrides, by feature name."""


def _missing(
    block: Block, base: NDArray[np.float64] | None, cur: NDArray[np.float64]
) -> MissingShare | None:
    cur_missing = block.extra(cur, "missing")
    cur_rows = float(block.counts(cur).sum()) + cur_missing
    if base is None:
        ref = block.ref
        return missing_share(ref.missing, ref.rows, cur_missing, cur_rows)
    base_missing = block.extra(base, "missing")
    base_rows = float(block.counts(base).sum()) + base_missing
    return missing_share(base_missing, base_rows, cur_missing, cur_rows)


def _measures(
    block: Block, base: NDArray[np.float64] | None, cur: NDArray[np.float64], discrete: bool
) -> Measures | None:
    cur_counts = block.counts(cur)
    if cur_counts.sum() <= 0:
        return None
    if base is None:
        base_counts = block.ref.counts
        base_tails = (0.0, 0.0)
    else:
        base_counts = block.counts(base)
        base_tails = (
            (block.extra(base, "sum_below"), block.extra(base, "sum_above"))
            if (block.kind is FeatureKind.numerical)
            else (0.0, 0.0)
        )
    if base_counts.sum() <= 0:
        return None
    if isinstance(block.ref, NumericalReference):
        tails = (block.extra(cur, "sum_below"), block.extra(cur, "sum_above"))
        return numerical_binned_measures(
            block.ref, base_counts, base_tails, cur_counts, tails, discrete=discrete
        )
    return categorical_measures(base_counts, cur_counts)


def profile_drift(
    layout: ProfileLayout,
    current: NDArray[np.float64],
    config: DriftConfig,
    *,
    baseline: NDArray[np.float64] | None = None,
    role: str = "feature",
    overrides: FeatureOverrides | None = None,
) -> DriftReport:
    """Drift of the window ``current`` against the reference, or against ``baseline``."""
    tests = []
    for block in layout.blocks:
        if block.role != role:
            continue
        method_name, materiality = (overrides or {}).get(block.name, (None, None))
        discrete = isinstance(block.ref, NumericalReference) and block.ref.discrete
        method: DriftMethod = resolve_method(block.kind, method_name, discrete=discrete)
        if baseline is None and not block.has_reference:
            tests.append(
                FeatureTest(
                    block.name,
                    block.kind,
                    method,
                    None,
                    materiality,
                    note="the reference has no values for it",
                )
            )
            continue
        measures = _measures(block, baseline, current, method.name == "chi2")
        note = None
        if measures is None:
            empty_base = baseline is not None and block.counts(baseline).sum() <= 0
            note = "no values in the previous window" if empty_base else "no values in the window"
        missing = _missing(block, baseline, current)
        tests.append(
            FeatureTest(block.name, block.kind, method, measures, materiality, note, missing)
        )
    return decide(tests, config)
