"""The offline gate: both models score the holdout over HTTP; the paired difference decides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.errors import DatasetError
from driftloop.monitor.rollout.offline import Endpoint, ScoringError, compare_holdout
from tests.procs import free_port


def holdout(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.choice(["a", "b"], n), "target": (x > 0).astype(int)})


def model_server(flip: float, *, shape: str = "objects") -> httpx.MockTransport:
    """A classifier answering ``x > 0`` except on a ``flip`` share of rows (fixed by x)."""

    def handle(request: httpx.Request) -> httpx.Response:
        rows = json.loads(request.content)["inputs"]
        preds = [int(r["x"] > 0) ^ int(abs(r["x"] * 1000) % 1 < flip) for r in rows]
        body: Any = [{"prediction": p} for p in preds]
        if shape == "dict":
            body = {"predictions": preds}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


def routed(champion: httpx.MockTransport, challenger: httpx.MockTransport) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        target = champion if request.url.host == "champion" else challenger
        return target.handle_request(request)

    return httpx.Client(transport=httpx.MockTransport(handle))


def test_a_better_challenger_is_non_inferior_and_superior() -> None:
    client = routed(model_server(0.2), model_server(0.05, shape="dict"))
    result = compare_holdout(
        client, Endpoint("http://champion"), Endpoint("http://challenger"), holdout()
    )
    assert result["verdict"] == "non_inferior"
    assert result["superior"] is True
    assert result["rows"] == 400
    assert result["challenger"] > result["champion"]
    d = result["difference"]
    assert d["lower"] < d["estimate"] < d["upper"]
    assert d["estimate"] == pytest.approx(result["challenger"] - result["champion"])


def test_a_worse_challenger_is_inferior() -> None:
    client = routed(model_server(0.02), model_server(0.3))
    result = compare_holdout(
        client, Endpoint("http://champion"), Endpoint("http://challenger"), holdout()
    )
    assert result["verdict"] == "inferior"
    assert result["difference"]["upper"] < -0.01


def test_regression_compares_the_mean_loss() -> None:
    frame = holdout().assign(target=lambda f: f["x"] * 2.5 + 0.1)

    def server(noise: float) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            rows = json.loads(request.content)["inputs"]
            return httpx.Response(200, json=[r["x"] * 2.5 + 0.1 + noise for r in rows])

        return httpx.MockTransport(handle)

    result = compare_holdout(
        routed(server(0.5), server(0.0)),
        Endpoint("http://champion"),
        Endpoint("http://challenger"),
        frame,
    )
    assert result["metric"] == "squared_error"
    assert result["champion"] == pytest.approx(0.25)
    assert result["challenger"] == pytest.approx(0.0)
    assert result["verdict"] == "non_inferior"


def test_a_missing_label_column_and_a_bad_answer_are_named() -> None:
    client = routed(model_server(0.1), model_server(0.1))
    with pytest.raises(DatasetError, match="no label column 'label'"):
        compare_holdout(
            client,
            Endpoint("http://champion"),
            Endpoint("http://challenger"),
            holdout(),
            label_column="label",
        )
    broken = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"oops": 1}))
    )
    with pytest.raises(ScoringError, match="not a list of predictions"):
        compare_holdout(broken, Endpoint("http://a"), Endpoint("http://b"), holdout())


def test_the_command_exits_3_naming_an_unreachable_model(tmp_path: Path) -> None:
    path = tmp_path / "holdout.csv"
    holdout(20).to_csv(path, index=False)
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["compare", "--champion", url, "--challenger", url, "--data", str(path)]
    )
    assert result.exit_code == 3
    assert "could not be reached" in result.output
