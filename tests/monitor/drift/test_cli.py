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
    assert "cannot read reference file" in result.stderr
    assert "broken.parquet' as Parquet" in result.stderr
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
    # Three distinct values: a discrete number, tested by chi-square on its values, but still
    # numerical (its effect size is the normalised Wasserstein distance).
    assert (plain["kind"], plain["method"]) == ("numerical", "chi2")
    assert (forced["kind"], forced["method"]) == ("categorical", "chi2")
    assert forced["drifted"]  # code 4 is a category the reference never saw


def test_files_sharing_no_feature_are_refused_naming_the_columns(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1, 2, 3]}).to_csv(tmp_path / "r.csv", index=False)
    pd.DataFrame({"x": [1.0, 2.0], "y": [3, 4]}).to_csv(tmp_path / "c.csv", index=False)
    for extra in ([], ["--fail-on-drift"], ["--json"]):
        result = runner.invoke(
            app, ["drift", str(tmp_path / "r.csv"), str(tmp_path / "c.csv"), *extra]
        )
        assert result.exit_code == 2, result.output
        assert "r.csv and c.csv share no feature column" in result.stderr
        assert "['a', 'b']" in result.stderr
        assert "['x', 'y']" in result.stderr
        assert result.stdout == ""


def test_label_and_prediction_columns_are_not_tested_as_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=500), "target": rng.integers(0, 2, 500)})
    cur = ref.assign(target=1 - ref["target"], pred=1)
    ref.assign(pred=0).to_csv(tmp_path / "r.csv", index=False)
    cur.to_csv(tmp_path / "c.csv", index=False)
    args = ["drift", str(tmp_path / "r.csv"), str(tmp_path / "c.csv"), "--json"]
    plain = runner.invoke(app, args)
    assert {f["name"] for f in json.loads(plain.stdout)["features"]} == {"a", "target", "pred"}
    assert "look like label or prediction columns" in plain.stderr
    only = runner.invoke(app, [*args, "--label-column", "target", "--prediction-column", "pred"])
    assert only.exit_code == 0, only.output
    assert [f["name"] for f in json.loads(only.stdout)["features"]] == ["a"]
    refused = runner.invoke(app, [*args, "--columns", "a", "--label-column", "a"])
    assert refused.exit_code == 2
    assert "share no feature column" in refused.stderr


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "reference file '{path}' is empty"),
        ("header.csv", b"a,b\n", "reference file '{path}' (CSV) has no rows"),
        ("trunc.parquet", b"\x00\x01garbage\xff\xfe", "its name says .parquet but it is binary"),
        ("bad.json", b'[{"a": 1,', "reference file '{path}' as JSON"),
    ],
    ids=["empty", "header-only", "not-parquet", "broken-json"],
)
def test_every_read_error_names_the_file(
    tmp_path: Path, files: tuple[Path, Path], name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(app, ["drift", str(path), str(files[1])])
    assert result.exit_code == 2
    assert message.format(path=path) in " ".join(result.stderr.split())


@pytest.mark.parametrize("kind", ["json", "jsonl", "tsv", "parquet-named-csv", "csv.gz"])
def test_the_format_comes_from_the_content_not_the_name(
    tmp_path: Path, files: tuple[Path, Path], kind: str
) -> None:
    frame = pd.read_csv(files[1])
    path = tmp_path / "data.bin"
    if kind == "json":
        frame.to_json(path, orient="records")
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif kind == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif kind == "parquet-named-csv":
        path = tmp_path / "data.csv"
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, compression="gzip")
    result = runner.invoke(app, ["drift", str(files[0]), str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [f["name"] for f in out["features"]] == ["a", "b", "c"]
    assert out["dataset_drift"] is True


def test_numbers_are_never_cut_in_a_narrow_terminal(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    names = [f"a_rather_long_feature_name_{i:02d}" for i in range(80)]
    ref = pd.DataFrame(rng.normal(size=(400, 80)), columns=names)
    cur = pd.DataFrame(rng.normal(0.2, 1, size=(400, 80)), columns=names)
    ref.to_parquet(tmp_path / "r.parquet")
    cur.to_parquet(tmp_path / "c.parquet")
    args = ["drift", str(tmp_path / "r.parquet"), str(tmp_path / "c.parquet")]
    report = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    for extra, width in (([], "80"), (["--wide"], "80"), ([], "60")):
        result = runner.invoke(app, [*args, *extra], env={"COLUMNS": width})
        assert result.exit_code == 0, result.output
        assert "…" not in result.stdout
        for feature in report["features"]:
            assert format(feature["p_adjusted"], ".3g") in result.stdout
            assert format(feature["p_value"], ".3g") in result.stdout
    wide = runner.invoke(app, [*args, "--wide"], env={"COLUMNS": "80"}).stdout
    assert all(name in wide for name in names), "--wide does not wrap names either"
