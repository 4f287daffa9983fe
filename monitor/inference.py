"""Schema inference: from the first records of an unknown model, or from a reference dataset.

An inferred schema is a starting point; ``POST /v1/models`` replaces it. While a schema is still
inferred, records that show new features or classes extend it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from driftloop.contract import (
    Feature,
    FeatureKind,
    ModelSchema,
    Prediction,
    PredictionKind,
    Record,
)

MAX_INFERRED_CLASSES = 100


def _kind_of(value: Any) -> FeatureKind | None:
    if value is None:
        return None
    if isinstance(value, bool | str):
        return FeatureKind.categorical
    if isinstance(value, int | float):
        return FeatureKind.numerical
    return FeatureKind.categorical


def infer_from_records(records: Iterable[Record], base: ModelSchema | None = None) -> ModelSchema:
    """Extend ``base`` (or a fresh schema) with the features and classes ``records`` show."""
    schema = base.model_copy(deep=True) if base else ModelSchema()
    known = {f.name for f in schema.features}
    prediction = schema.prediction
    classes: list[Any] = list(prediction.classes or [])
    kinds_seen: set[str] = set()
    for record in records:
        for name, value in record.inputs.items():
            if name in known:
                continue
            kind = _kind_of(value)
            if kind is not None:
                schema.features.append(Feature(name=name, kind=kind))
                known.add(name)
        predicted = record.outputs.get(prediction.field)
        if predicted is None or isinstance(predicted, dict | list):
            continue
        kinds_seen.add(type(predicted).__name__)
        if not isinstance(predicted, float) and predicted not in classes:
            classes.append(predicted)
    if base is None or not base.features:
        predicts = (
            PredictionKind.regression if kinds_seen == {"float"} else PredictionKind.classification
        )
        prediction = Prediction(kind=predicts, field=prediction.field)
    if prediction.kind is PredictionKind.classification and classes:
        prediction = prediction.model_copy(update={"classes": classes[:MAX_INFERRED_CLASSES]})
    schema.prediction = prediction
    return schema


def infer_from_frame(
    frame: pd.DataFrame,
    *,
    label_column: str | None = None,
    prediction_column: str | None = None,
) -> ModelSchema:
    """A schema whose features are the columns of ``frame`` (less label and prediction)."""
    features = []
    skip = {label_column, prediction_column}
    for name in frame.columns:
        if name in skip:
            continue
        numeric = pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
            frame[name]
        )
        kind = FeatureKind.numerical if numeric else FeatureKind.categorical
        features.append(Feature(name=str(name), kind=kind))
    prediction = Prediction()
    target = label_column if label_column in frame.columns else prediction_column
    if target and target in frame.columns:
        column = frame[target]
        if pd.api.types.is_float_dtype(column):
            prediction = Prediction(kind=PredictionKind.regression)
        else:
            values = sorted(column.dropna().unique().tolist(), key=str)
            prediction = Prediction(
                kind=PredictionKind.classification, classes=values[:MAX_INFERRED_CLASSES]
            )
    return ModelSchema(features=features, prediction=prediction, label_column=label_column)
