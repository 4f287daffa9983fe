"""The drift decision: Benjamini–Hochberg across features, then significance AND materiality.

A feature drifts when its BH-adjusted p-value is below ``alpha`` and its effect size reaches the
materiality threshold (methods without a p-value use the threshold alone). The dataset drifts
when the share of drifted features among those that could be tested reaches ``drifted_share``.
A feature without values on either side (an empty window, all NaN) is reported, not tested: its
numbers are ``None`` with a note saying why, and it does not count in the share. Neither does a
test on fewer than ``min_rows`` values: its numbers are reported with a note, with no verdict.

The share of missing values is a test of its own (:mod:`~driftloop.monitor.drift.missing`), in
the same Benjamini–Hochberg family: a feature also drifts when its missing share changed
significantly by at least the materiality threshold (in share points).

``alarm_alpha`` (set by the minute-by-minute job, see :mod:`~driftloop.monitor.drift.budget`)
decides the dataset verdict at a stricter level than the per-feature flags, so that re-testing an
overlapping window every minute stays within a false-alarm budget per day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftloop.contract import FeatureKind
from driftloop.monitor.drift.correction import benjamini_hochberg
from driftloop.monitor.drift.methods import DriftMethod, Measures
from driftloop.monitor.drift.missing import MissingShare

__all__ = ["DriftConfig", "DriftReport", "FeatureDrift", "FeatureTest", "decide"]


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the decision (defaults from ``Settings.drift``)."""

    alpha: float = 0.05
    materiality: float = 0.1
    drifted_share: float = 0.5
    min_rows: int = 30
    alarm_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.min_rows < 1:
            raise ValueError(f"min_rows must be >= 1, got {self.min_rows}")
        if self.alarm_alpha is not None and not 0 < self.alarm_alpha <= self.alpha:
            raise ValueError(f"alarm_alpha must be in (0, alpha], got {self.alarm_alpha}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.materiality < 0:
            raise ValueError(f"materiality must be >= 0, got {self.materiality}")
        if not 0 < self.drifted_share <= 1:
            raise ValueError(f"drifted_share must be in (0, 1], got {self.drifted_share}")


@dataclass(frozen=True)
class FeatureTest:
    """One feature's measures before the decision (``measures`` is None when untestable)."""

    name: str
    kind: FeatureKind
    method: DriftMethod
    measures: Measures | None
    materiality: float | None = None
    note: str | None = None
    missing: MissingShare | None = None


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class FeatureDrift:
    """The decision for one feature, with every number that led to it."""

    name: str
    kind: FeatureKind
    method: str
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    effect_size: float | None
    drifted: bool
    materiality: float
    psi: float | None = None
    rows: int = 0
    note: str | None = None
    tested: bool = True
    missing: dict[str, Any] | None = None
    alarm: bool = False

    def as_json(self) -> dict[str, Any]:
        """The CLI's per-feature JSON object (exact key set of the documented shape)."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "method": self.method,
            "statistic": _num(self.statistic),
            "p_value": _num(self.p_value),
            "p_adjusted": _num(self.p_adjusted),
            "effect_size": _num(self.effect_size),
            "drifted": self.drifted,
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything, for stored results and the model page."""
        out = self.as_json()
        out.update(
            materiality=self.materiality,
            psi=_num(self.psi),
            rows=self.rows,
            note=self.note,
            tested=self.tested,
            missing=self.missing,
        )
        return out


@dataclass(frozen=True)
class DriftReport:
    """Per-feature decisions and the dataset-level verdict."""

    dataset_drift: bool
    drifted_share: float
    features: list[FeatureDrift] = field(default_factory=list)
    alarm_share: float | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"dataset_drift", "drifted_share", "features": [...]}`` as the CLI prints it."""
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_share": self.drifted_share,
            "features": [f.as_json() for f in self.features],
        }

    def feature(self, name: str) -> FeatureDrift:
        """The decision for feature ``name``."""
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(f"no feature {name!r} in this report")


def _missing_dict(missing: MissingShare, p_adjusted: float | None, drifted: bool) -> dict[str, Any]:
    out = missing.as_dict()
    out.update(p_adjusted=p_adjusted, drifted=drifted)
    return out


def decide(tests: Sequence[FeatureTest], config: DriftConfig) -> DriftReport:
    """Adjust p-values across ``tests`` (BH) and decide each feature and the dataset."""
    family: list[float] = []
    dist_at: dict[int, int] = {}
    miss_at: dict[int, int] = {}
    for i, t in enumerate(tests):
        m = t.measures
        if m is not None and t.method.has_p_value and m.current_rows >= config.min_rows:
            dist_at[i] = len(family)
            family.append(m.p_value)
        if t.missing is not None and t.missing.rows >= config.min_rows:
            miss_at[i] = len(family)
            family.append(t.missing.p_value)
    adjusted = benjamini_hochberg(np.array(family, dtype=np.float64))
    alarm_alpha = config.alpha if config.alarm_alpha is None else config.alarm_alpha
    features: list[FeatureDrift] = []
    for i, test in enumerate(tests):
        threshold = config.materiality if test.materiality is None else test.materiality
        m = test.measures
        miss_tested = i in miss_at
        missing_info = None
        miss_drift = miss_alarm = False
        if test.missing is not None:
            p_miss = float(adjusted[miss_at[i]]) if miss_tested else None
            material = test.missing.effect_size >= threshold
            miss_drift = p_miss is not None and p_miss < config.alpha and material
            miss_alarm = p_miss is not None and p_miss < alarm_alpha and material
            missing_info = _missing_dict(test.missing, p_miss, miss_drift)
        if m is None:
            features.append(
                FeatureDrift(
                    test.name,
                    test.kind,
                    test.method.name,
                    None,
                    None,
                    None,
                    None,
                    miss_drift,
                    threshold,
                    note=test.note,
                    tested=miss_tested,
                    missing=missing_info,
                    alarm=miss_alarm,
                )
            )
            continue
        effect = test.method.effect_size(m)
        material = bool(effect >= threshold)
        enough = m.current_rows >= config.min_rows
        note = test.note
        if not enough:
            note = (
                f"{m.current_rows} values, fewer than the minimum of {config.min_rows}: no verdict"
            )
        p_value: float | None
        p_adjusted: float | None
        if not enough:
            drifted = alarm = False
            p_value, p_adjusted = (m.p_value, None) if test.method.has_p_value else (None, None)
        elif test.method.has_p_value:
            p_value, p_adjusted = m.p_value, float(adjusted[dist_at[i]])
            drifted = p_adjusted < config.alpha and material
            alarm = p_adjusted < alarm_alpha and material
        else:
            drifted = alarm = material
            p_value, p_adjusted = None, None
        if miss_drift and not drifted:
            note = note or (
                f"missing share changed from {test.missing.reference_share:.1%} "  # type: ignore[union-attr]
                f"to {test.missing.share:.1%}"  # type: ignore[union-attr]
            )
        features.append(
            FeatureDrift(
                name=test.name,
                kind=test.kind,
                method=test.method.name,
                statistic=test.method.statistic(m),
                p_value=p_value,
                p_adjusted=p_adjusted,
                effect_size=effect,
                drifted=bool(drifted or miss_drift),
                materiality=threshold,
                psi=m.psi,
                rows=m.current_rows,
                note=note,
                tested=enough or miss_tested,
                missing=missing_info,
                alarm=bool(alarm or miss_alarm),
            )
        )
    tested = [f for f in features if f.tested]
    share = sum(f.drifted for f in tested) / len(tested) if tested else 0.0
    alarm_share = sum(f.alarm for f in tested) / len(tested) if tested else 0.0
    return DriftReport(
        dataset_drift=bool(tested) and alarm_share >= config.drifted_share,
        drifted_share=float(share),
        features=features,
        alarm_share=float(alarm_share) if config.alarm_alpha is not None else None,
    )
