"""Counting records into profile vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.contract import Feature, FeatureKind, ModelSchema, Prediction
from driftloop.monitor.profiles import ProfileLayout, build_baseline


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, 1000),
            "c": rng.choice(["a", "b", "c"], 1000),
            "prediction": rng.choice([0, 1], 1000),
        }
    )


@pytest.fixture
def layout(reference: pd.DataFrame) -> ProfileLayout:
    schema = ModelSchema(
        features=[
            Feature(name="x", kind=FeatureKind.numerical),
            Feature(name="c", kind=FeatureKind.categorical),
        ],
        prediction=Prediction(classes=[0, 1]),
    )
    return build_baseline(1, reference, schema).layout


def test_records_and_frames_count_the_same(layout: ProfileLayout, reference: pd.DataFrame) -> None:
    frame = reference.sample(200, random_state=1).reset_index(drop=True)
    inputs = frame[["x", "c"]].to_dict("records")
    outputs = [{"prediction": int(p)} for p in frame["prediction"]]
    vector, flags, _ = layout.count(inputs, outputs)
    expected = layout.count_frame(frame[["x", "c"]], frame["prediction"])
    np.testing.assert_allclose(vector, expected)
    assert vector[0] == 200
    assert not flags.any()


def test_the_guard_flags_far_values_unseen_categories_and_wrong_types(
    layout: ProfileLayout,
) -> None:
    inputs = [
        {"x": 0.1, "c": "a"},
        {"x": 1e9, "c": "a"},
        {"x": 0.2, "c": "zzz"},
        {"x": "text", "c": "b"},
        {"x": None, "c": None},
        {"c": {"nested": 1}},
    ]
    vector, flags, reasons = layout.count(inputs)
    assert flags.tolist() == [False, True, True, True, False, True]
    assert reasons == [[], ["x"], ["c"], ["x"], [], ["c"]]
    assert vector[1] == 4
    x, c = layout.features
    assert x.extra(vector, "missing") == 2
    assert x.extra(vector, "type_errors") == 1
    assert c.extra(vector, "missing") == 1
    assert c.extra(vector, "type_errors") == 1
    assert c.counts(vector)[-1] == 1  # the unseen bucket


def test_a_value_just_outside_the_range_is_not_yet_out_of_distribution(
    layout: ProfileLayout,
) -> None:
    x = layout.features[0].ref
    inside_margin = x.maximum + 0.4 * (x.maximum - x.minimum)
    _, flags, _ = layout.count([{"x": inside_margin, "c": "a"}])
    assert not flags.any()


def test_the_fingerprint_follows_the_grid(reference: pd.DataFrame) -> None:
    schema = ModelSchema(features=[Feature(name="x", kind=FeatureKind.numerical)])
    a = build_baseline(1, reference, schema).layout
    b = build_baseline(2, reference, schema).layout
    shifted = reference.assign(x=reference["x"] + 1)
    c = build_baseline(3, shifted, schema).layout
    assert a.fingerprint == b.fingerprint  # same data, same grid: replicas agree
    assert a.fingerprint != c.fingerprint


def test_a_schema_without_features_uses_the_reference_columns(reference: pd.DataFrame) -> None:
    baseline = build_baseline(1, reference, ModelSchema())
    assert [s.name for s in baseline.specs] == ["x", "c"]  # the prediction column is not a feature
    assert baseline.layout.prediction is not None


def test_known_classes_without_reference_predictions_compare_window_to_window(
    reference: pd.DataFrame,
) -> None:
    schema = ModelSchema(
        features=[Feature(name="x", kind=FeatureKind.numerical)],
        prediction=Prediction(field="label", classes=["no", "yes"]),
    )
    layout = build_baseline(1, reference, schema).layout
    block = layout.prediction
    assert block is not None
    assert not block.has_reference
    vector, _, _ = layout.count([{"x": 0.0}] * 3, [{"label": "yes"}, {"label": "no"}, {}])
    assert block.counts(vector).tolist() == [1.0, 1.0, 0.0]
    assert block.extra(vector, "missing") == 1
