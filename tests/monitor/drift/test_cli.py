"""``driftloop drift REFERENCE CURRENT``: the table, the exact JSON shape, the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftloop.cli import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {"a": rng.normal(size=3000), "b": rng.normal(size=3000), "c": rng.choice(list("xyz"), 3000)}
    )
    cur = pd.DataFrame(
        {
            "a": rng.normal(0.6, 1, size=2000),
            "b": rng.normal(size=2000),
            "c": rng.choice(list("xyzw"), 2000),
        }
    )
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.parquet", tmp_path / "cur.csv"


def test_json_has_exactly_the_documented_shape(files: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["drift", str(files[0]), str(files[1]), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"dataset_drift", "drifted_share", "features"}
    assert out["dataset_drift"] is True
    assert out["drifted_share"] == pytest.approx(2 / 3)
    keys = {
        "name",
        "kind",
        "method",
        "statistic",
        "p_value",
        "p_adjusted",
        "effect_size",
        "drifted",
    }
    assert all(set(f) == keys for f in out["features"])
    by_name = {f["name"]: f for f in out["features"]}
    assert by_name["a"]["drifted"]
    assert by_name["c"]["drifted"]
    assert not by_name["b"]["drifted"]
    assert by_name["c"]["kind"] == "categorical"
    assert by_name["c"]["method"] == "chi2"


def test_people_get_a_table_and_a_verdict(files: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["drift", str(files[0]), str(files[1])], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "Drift of cur.csv against ref.parquet" in result.stdout
    assert "DRIFT: 67% of features drifted" in result.stdout


def test_options_override_settings_and_select_columns(files: tuple[Path, Path]) -> None:
    args = [
        "drift",
        str(files[0]),
        str(files[1]),
        "--json",
        "--columns",
        "b,c",
        "--materiality",
        "0.9",
    ]
    out = json.loads(runner.invoke(app, args).stdout)
    assert [f["name"] for f in out["features"]] == ["b", "c"]
    assert out["dataset_drift"] is False


def test_fail_on_drift_sets_the_exit_status(files: tuple[Path, Path]) -> None:
    result = runner.invoke(
        app, ["drift", str(files[0]), str(files[1]), "--fail-on-drift", "--json"]
    )
    assert result.exit_code == 1


def test_bad_input_names_the_problem(files: tuple[Path, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    result = runner.invoke(app, ["drift", str(broken), str(files[1])])
    assert result.exit_code == 2
    assert "cannot read the dataset as Parquet" in result.stderr
    result = runner.invoke(app, ["drift", str(files[0]), str(files[1]), "--columns", "nope"])
    assert result.exit_code == 2
    assert "the reference has no columns ['nope']" in result.stderr


def test_html_writes_an_evidently_report(files: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = runner.invoke(
        app, ["drift", str(files[0]), str(files[1]), "--json", "--html", str(target)]
    )
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<html") or "<!doctype html>" in html[:200].lower()
    assert "Dataset Drift" in html
    assert "Wasserstein distance (normed)" in html


def test_numbers_can_be_compared_as_categories(tmp_path: Path) -> None:
    pd.DataFrame({"code": [1, 2, 3] * 100}).to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame({"code": [1, 2, 3, 4] * 75}).to_csv(tmp_path / "c.csv", index=False)
    args = ["drift", str(tmp_path / "r.csv"), str(tmp_path / "c.csv"), "--json"]
    plain = json.loads(runner.invoke(app, args).stdout)["features"][0]
    forced = json.loads(runner.invoke(app, [*args, "--categorical", "code"]).stdout)["features"][0]
    assert (plain["kind"], plain["method"]) == ("numerical", "ks")
    assert (forced["kind"], forced["method"]) == ("categorical", "chi2")
    assert forced["drifted"]  # code 4 is a category the reference never saw
