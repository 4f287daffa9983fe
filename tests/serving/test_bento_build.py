"""``driftloop bento build``: bad inputs are refused naming the problem; the generated service
is valid Python for any column names. (The full build, serve and smoke test runs in the
integration session fixture, through the CLI.)"""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from driftloop.errors import ConfigurationError, DatasetError
from driftloop.serving.bento import FeatureSpec, build_bento, read_reference, render_service


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "ref.csv").write_text("a,b,label\n1.0,x,0\n2.0,y,1\n3.0,x,1\n")
    model = LogisticRegression().fit([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]], [0, 1, 1])
    joblib.dump(model, tmp_path / "model.joblib")
    joblib.dump({"not": "a model"}, tmp_path / "dict.pkl")
    return tmp_path


def test_reference_columns_and_types_are_read(files: Path) -> None:
    specs, rows = read_reference(files / "ref.csv")
    assert specs == [
        FeatureSpec("a", "float"),
        FeatureSpec("b", "str"),
        FeatureSpec("label", "int"),
    ]
    assert rows[0] == {"a": 1.0, "b": "x", "label": 0}


@pytest.mark.parametrize(
    ("model", "reference", "name", "kwargs", "error", "match"),
    [
        ("model.joblib", "ref.csv", "Bad_Name", {}, ConfigurationError, "bento name 'Bad_Name'"),
        ("missing.pkl", "ref.csv", "ok", {}, ConfigurationError, "does not exist"),
        ("dict.pkl", "ref.csv", "ok", {}, ConfigurationError, r"\(dict\) has no predict"),
        ("model.joblib", "nope.csv", "ok", {}, DatasetError, "'.*nope.csv' does not exist"),
        ("model.joblib", "ref.csv", "ok", {"label_column": "y"}, DatasetError, "label column 'y'"),
        ("model.joblib", "ref.csv", "ok", {}, DatasetError, "expects 2 features .* 3 columns"),
    ],
    ids=["name", "no-model-file", "no-predict", "no-reference", "no-label", "feature-count"],
)
def test_bad_inputs_are_refused_naming_the_problem(
    files: Path, model: str, reference: str, name: str, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        build_bento(files / model, files / reference, name, smoke=False, **kwargs)


def test_the_generated_service_is_valid_python_for_any_column_names() -> None:
    features = [
        FeatureSpec("sepal length (cm)", "float"),
        FeatureSpec("class", "str"),
        FeatureSpec("2nd", "int"),
        FeatureSpec("model_x", "bool"),
        FeatureSpec("Class", "str"),
    ]
    source = render_service(
        name="weird", model_tag="weird:1", features=features, frame_input=False, capture=True
    )
    compile(source, "service.py", "exec")
    for alias in ("'sepal length (cm)'", "'class'", "'2nd'", "'model_x'", "'Class'"):
        assert f"Field(alias={alias})" in source
    assert "DriftloopMiddleware" in source
