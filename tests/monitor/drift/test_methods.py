"""The method table, overrides, and the public surface of the drift package."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.contract import Feature, FeatureKind, ModelSchema
from driftloop.errors import ConfigurationError, DatasetError
from driftloop.monitor.drift import (
    METHODS,
    DriftConfig,
    FeatureSpec,
    Reference,
    compare_frame,
    resolve_method,
    specs_from_schema,
)


def test_every_method_is_in_the_table_with_its_kinds() -> None:
    assert set(METHODS) == {"ks", "chi2", "psi", "wasserstein", "jensen_shannon"}
    assert resolve_method(FeatureKind.numerical, None).name == "ks"
    assert resolve_method(FeatureKind.categorical, None).name == "chi2"
    assert {n for n, m in METHODS.items() if m.has_p_value} == {"ks", "chi2"}


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (FeatureKind.numerical, "anderson", "unknown drift method 'anderson'"),
        (FeatureKind.categorical, "ks", "does not apply to categorical"),
        (FeatureKind.numerical, "chi2", "only when it is discrete"),
    ],
    ids=["unknown", "ks-on-categories", "chi2-on-numbers"],
)
def test_a_bad_method_is_refused_by_name(kind: FeatureKind, name: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_method(kind, name)


@pytest.mark.parametrize("method", ["psi", "wasserstein"])
def test_distance_methods_decide_by_threshold_alone(method: str) -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000)})
    cur = pd.DataFrame({"x": rng.normal(1, 1, 3000)})
    spec = FeatureSpec("x", FeatureKind.numerical, method=method)
    feature = compare_frame(Reference.from_frame(ref, [spec]), cur, DriftConfig()).features[0]
    assert feature.method == method
    assert feature.p_value is None
    assert feature.p_adjusted is None
    assert feature.drifted
    assert feature.statistic == feature.effect_size


def test_schema_overrides_become_specs() -> None:
    schema = ModelSchema(
        features=[
            Feature(name="age", kind=FeatureKind.numerical, drift_method="psi", materiality=0.2),
            Feature(name="city", kind=FeatureKind.categorical, drift_method="jensen_shannon"),
        ]
    )
    assert specs_from_schema(schema) == [
        FeatureSpec("age", FeatureKind.numerical, "psi", 0.2),
        FeatureSpec("city", FeatureKind.categorical, "jensen_shannon", None),
    ]


def test_unseen_categories_count_against_the_reference() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 500})
    cur = pd.DataFrame({"c": ["a", "b", "zzz", "yyy"] * 250})
    feature = compare_frame(Reference.from_frame(ref), cur, DriftConfig()).features[0]
    assert feature.drifted
    assert feature.p_value is not None
    assert feature.p_value < 1e-10


def test_numbers_and_their_text_are_one_category() -> None:
    ref = pd.DataFrame({"c": pd.Series([1, 2, 3] * 100, dtype=object)})
    cur = pd.DataFrame({"c": pd.Series(["1", 2.0, "3"] * 100, dtype=object)})
    feature = compare_frame(Reference.from_frame(ref), cur, DriftConfig()).features[0]
    assert feature.statistic == 0.0


def test_a_missing_column_is_reported_not_crashed() -> None:
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    report = compare_frame(
        Reference.from_frame(ref), pd.DataFrame({"x": [1.0, 2.0]}), DriftConfig()
    )
    assert report.feature("y").note == "column missing from the current data"
    assert report.as_json()["features"][1] == {
        "name": "y",
        "kind": "numerical",
        "method": "ks",
        "statistic": None,
        "p_value": None,
        "p_adjusted": None,
        "effect_size": None,
        "drifted": False,
    }


def test_a_reference_without_values_is_refused() -> None:
    with pytest.raises(DatasetError, match="'x': the reference has no numeric values"):
        Reference.from_frame(pd.DataFrame({"x": [np.nan, np.nan]}))


def test_threads_give_the_same_answer() -> None:
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(6)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.3, 1, size=500) for i in range(6)})
    reference = Reference.from_frame(ref)
    one = compare_frame(reference, cur, DriftConfig()).as_json()
    assert compare_frame(reference, cur, DriftConfig(), workers=3).as_json() == one


def test_a_categorical_window_without_values_is_reported_not_crashed() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 10})
    cur = pd.DataFrame({"c": pd.Series([None, None], dtype=object)})
    report = compare_frame(Reference.from_frame(ref), cur, DriftConfig())
    assert report.features[0].note == "no values in the current data"
    assert not report.dataset_drift
