"""``driftloop estimate REFERENCE CURRENT``: the documented JSON, realized values beside the
estimates when the window has labels, exit 2 with a reason otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_friedman1
from sklearn.linear_model import LinearRegression, LogisticRegression
from typer.testing import CliRunner

from driftloop.cli import app

runner = CliRunner()


@pytest.fixture
def classified(tmp_path: Path) -> tuple[Path, Path]:
    """Reference and window of a three-class digits model, with scores s0..s2 and labels."""
    x, y = load_digits(n_class=3, return_X_y=True)
    rng = np.random.default_rng(0)
    train, reference, current = np.array_split(rng.permutation(len(y)), 3)
    model = LogisticRegression(max_iter=2000, C=0.001).fit(x[train], y[train])
    paths = []
    for name, rows in (("ref.parquet", reference), ("cur.csv", current)):
        frame = pd.DataFrame(model.predict_proba(x[rows]), columns=["s0", "s1", "s2"])
        frame["prediction"] = model.predict(x[rows])
        frame["label"] = y[rows]
        path = tmp_path / name
        frame.to_parquet(path) if name.endswith("parquet") else frame.to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def test_json_has_the_documented_shape_and_the_realized_values(
    classified: tuple[Path, Path],
) -> None:
    args = ["estimate", *map(str, classified), "--prediction-column", "prediction"]
    args += ["--label-column", "label", "--score-columns", "s0,s1,s2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["task"] == "classification"
    assert out["rows"] == len(pd.read_csv(classified[1]))
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "f1:0"} <= set(out["metrics"])
    for value in out["metrics"].values():
        assert set(value) == {"estimate", "lower", "upper"}
    accuracy = out["metrics"]["accuracy"]
    assert accuracy["lower"] <= out["realized"]["accuracy"] <= accuracy["upper"]


def test_a_window_without_labels_gets_estimates_only(
    classified: tuple[Path, Path], tmp_path: Path
) -> None:
    unlabeled = tmp_path / "unlabeled.csv"
    pd.read_csv(classified[1]).drop(columns="label").to_csv(unlabeled, index=False)
    args = ["estimate", str(classified[0]), str(unlabeled), "--prediction-column", "prediction"]
    args += ["--label-column", "label", "--score-columns", "s0,s1,s2", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "realized" not in json.loads(result.stdout)


def test_regression_estimates_mae_and_rmse(tmp_path: Path) -> None:
    x, y = make_friedman1(1200, noise=1.0, random_state=0)
    model = LinearRegression().fit(x[:400], y[:400])
    for name, rows in (("ref.csv", slice(400, 800)), ("cur.csv", slice(800, 1200))):
        frame = pd.DataFrame(x[rows], columns=[f"x{i}" for i in range(10)])
        frame["yhat"], frame["y"] = model.predict(x[rows]), y[rows]
        frame.to_csv(tmp_path / name, index=False)
    args = ["estimate", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv")]
    args += ["--prediction-column", "yhat", "--label-column", "y", "--task", "regression"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["metrics"]) == {"mae", "rmse"}
    assert out["metrics"]["mae"]["estimate"] == pytest.approx(out["realized"]["mae"], rel=0.25)
    table = runner.invoke(app, args)
    assert table.exit_code == 0
    assert "rmse" in table.stdout
    assert "Realized" in table.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--score-columns", "s0,s1"], "2 score columns for 3 classes", id="width"),
        pytest.param(["--score-columns", "s0,s1,nope"], "lacks the columns ['nope']", id="col"),
        pytest.param(["--task", "classification"], "needs --score-columns", id="no-scores"),
    ],
)
def test_bad_input_exits_2_and_says_why(
    classified: tuple[Path, Path], extra: list[str], message: str
) -> None:
    args = ["estimate", *map(str, classified), "--prediction-column", "prediction"]
    result = runner.invoke(app, [*args, "--label-column", "label", *extra])
    assert result.exit_code == 2
    assert message in result.output
