"""The drift decision: Benjamini–Hochberg across features, then significance AND materiality.

A feature drifts when its BH-adjusted p-value is below ``alpha`` and its effect size reaches the
materiality threshold (methods without a p-value use the threshold alone). The dataset drifts
when the share of drifted features among those that could be tested reaches ``drifted_share``.
A feature without values on either side (an empty window, all NaN) is reported, not tested: its
numbers are ``None`` with a note saying why, and it does not count in the share.
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

__all__ = ["DriftConfig", "DriftReport", "FeatureDrift", "FeatureTest", "decide"]


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the decision (defaults from ``Settings.drift``)."""

    alpha: float = 0.05
    materiality: float = 0.1
    drifted_share: float = 0.5

    def __post_init__(self) -> None:
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
        out.update(materiality=self.materiality, psi=_num(self.psi), rows=self.rows, note=self.note)
        return out


@dataclass(frozen=True)
class DriftReport:
    """Per-feature decisions and the dataset-level verdict."""

    dataset_drift: bool
    drifted_share: float
    features: list[FeatureDrift] = field(default_factory=list)

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


def decide(tests: Sequence[FeatureTest], config: DriftConfig) -> DriftReport:
    """Adjust p-values across ``tests`` (BH) and decide each feature and the dataset."""
    raw = np.array(
        [
            t.measures.p_value if t.measures is not None and t.method.has_p_value else np.nan
            for t in tests
        ],
        dtype=np.float64,
    )
    adjusted = benjamini_hochberg(raw)
    features: list[FeatureDrift] = []
    for test, p_adj in zip(tests, adjusted, strict=True):
        threshold = config.materiality if test.materiality is None else test.materiality
        m = test.measures
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
                    False,
                    threshold,
                    note=test.note,
                )
            )
            continue
        effect = test.method.effect_size(m)
        material = bool(effect >= threshold)
        if test.method.has_p_value:
            drifted = bool(p_adj < config.alpha) and material
            p_value, p_adjusted = m.p_value, float(p_adj)
        else:
            drifted, p_value, p_adjusted = material, None, None
        features.append(
            FeatureDrift(
                name=test.name,
                kind=test.kind,
                method=test.method.name,
                statistic=test.method.statistic(m),
                p_value=p_value,
                p_adjusted=p_adjusted,
                effect_size=effect,
                drifted=drifted,
                materiality=threshold,
                psi=m.psi,
                rows=m.current_rows,
                note=test.note,
            )
        )
    tested = [f for f in features if f.statistic is not None]
    share = sum(f.drifted for f in tested) / len(tested) if tested else 0.0
    return DriftReport(
        dataset_drift=bool(tested) and share >= config.drifted_share,
        drifted_share=float(share),
        features=features,
    )
