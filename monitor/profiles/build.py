"""Build a model's comparison reference and profile layout from its reference data and schema."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.contract import FeatureKind, ModelSchema, PredictionKind
from driftloop.monitor.drift.frame import FeatureSpec, Reference, infer_specs, specs_from_schema
from driftloop.monitor.drift.reference import (
    CategoricalReference,
    NumericalReference,
    category_key,
)
from driftloop.monitor.profiles.layout import ProfileLayout
from driftloop.monitor.profiles.window import FeatureOverrides

__all__ = ["ModelBaseline", "build_baseline"]


@dataclass(frozen=True, eq=False)
class ModelBaseline:
    """Everything derived once from a model's reference dataset."""

    reference_id: int
    specs: list[FeatureSpec]
    reference: Reference
    layout: ProfileLayout
    overrides: FeatureOverrides


def _prediction_reference(
    frame: pd.DataFrame, schema: ModelSchema
) -> tuple[NumericalReference | CategoricalReference | None, bool]:
    field = schema.prediction.field
    kind = (
        FeatureKind.numerical
        if schema.prediction.kind is PredictionKind.regression
        else FeatureKind.categorical
    )
    if field in frame.columns and frame[field].notna().any():
        ref = Reference.from_frame(frame, [FeatureSpec(field, kind)]).features[field]
        return ref, True
    if kind is FeatureKind.categorical and schema.prediction.classes:
        # Known classes but no reference distribution: profiled, compared only window to window.
        classes = tuple(sorted({category_key(c) for c in schema.prediction.classes}))
        empty = np.zeros(len(classes) + 1)
        return CategoricalReference(field, classes, empty, rows=0, missing=0), False
    return None, False


def build_baseline(
    reference_id: int, frame: pd.DataFrame, schema: ModelSchema, *, ood_margin: float = 0.5
) -> ModelBaseline:
    """Prepare the comparison reference and the profile layout of one reference dataset."""
    skip = {schema.label_column, schema.prediction.field}
    specs = specs_from_schema(schema) or infer_specs(
        frame, [c for c in frame.columns if c not in skip]
    )
    specs = [s for s in specs if s.name in frame.columns]
    reference = Reference.from_frame(frame, specs)
    prediction, has_reference = _prediction_reference(frame, schema)
    layout = ProfileLayout(
        [reference.features[s.name] for s in specs],
        prediction,
        prediction_has_reference=has_reference,
        ood_margin=ood_margin,
    )
    overrides = {s.name: (s.method, s.materiality) for s in specs}
    return ModelBaseline(reference_id, specs, reference, layout, overrides)
