"""Session fixtures of the serving integration tests: a BentoML home with three Bentos (our
champion and challenger built by ``driftloop bento build``, and BentoML's own iris example),
served once for the whole session, and a monitor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.procs import MonitorProcess
from tests.serving.procs import BentoProcess

THIRDPARTY = Path(__file__).parent / "thirdparty" / "iris_classification"

FIT = textwrap.dedent(
    """
    import joblib, sys
    from pathlib import Path
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    out = Path(sys.argv[1])
    data = load_iris(as_frame=True)
    x, y = data.data, data.target.map(dict(enumerate(data.target_names)))
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), out / "champion.joblib")
    joblib.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(x.values, y),
                out / "challenger.pkl")
    joblib.dump(LogisticRegression(max_iter=500).fit(x.values, data.target), out / "example.pkl")
    frame = x.copy()
    frame["species"] = y
    frame.to_parquet(out / "reference.parquet")
    """
)

PREPARE = textwrap.dedent(
    """
    import joblib, sys
    from pathlib import Path
    import bentoml
    from driftloop.serving.bento import build_bento

    out = Path(sys.argv[1])
    # BentoML's iris example loads iris_sklearn:latest/model.pkl (its train.py saves it so).
    with bentoml.models.create("iris_sklearn") as model:
        joblib.dump(joblib.load(out / "example.pkl"), model.path_of("model.pkl"))
    # The challenger also carries DriftloopMiddleware (no monitor configured: it only counts).
    challenger = build_bento(out / "challenger.pkl", out / "reference.parquet", "iris-challenger",
                             label_column="species", smoke=False, capture=True)
    print(challenger.bento_tag)
    """
)


@dataclass
class Bentos:
    """The Bentos served for the session."""

    champion: BentoProcess
    challenger: BentoProcess
    thirdparty: BentoProcess
    champion_build: dict[str, Any]
    features: list[str]


@pytest.fixture(scope="session")
def bento_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("bentoml-home")
    return {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True",
            "XDG_STATE_HOME": str(home / "xdg-state")}  # fmt: skip


@pytest.fixture(scope="session")
def bentos(tmp_path_factory: pytest.TempPathFactory, bento_env: dict[str, str]) -> Iterator[Bentos]:
    """Build (CLI for the champion, with its smoke test) and serve three Bentos."""
    work = tmp_path_factory.mktemp("bentos")
    env = {**os.environ, **bento_env}
    fitted = subprocess.run(
        [sys.executable, "-c", FIT, str(work)], env=env, capture_output=True, text=True, timeout=120
    )
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    # The champion is built (and smoke-tested) by the CLI while the rest is prepared beside it.
    champion_cli = subprocess.Popen(
        [sys.executable, "-m", "driftloop", "bento", "build", "--model",
         str(work / "champion.joblib"), "--reference", str(work / "reference.parquet"),
         "--label-column", "species", "--name", "iris-champion", "--smoke-rows", "10"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    procs: list[BentoProcess] = []
    try:
        prepared = subprocess.run(
            [sys.executable, "-c", PREPARE, str(work)], env=env, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        challenger_tag = prepared.stdout.strip().splitlines()[-1]
        thirdparty = BentoProcess("thirdparty", "service:IrisClassifier", work, bento_env,
                                  str(THIRDPARTY))  # fmt: skip
        procs.append(thirdparty)
        out, err = champion_cli.communicate(timeout=240)
        assert champion_cli.returncode == 0, err[-3000:]
        champion_build = json.loads(out)
        champion = BentoProcess("champion", champion_build["bento_tag"], work, bento_env)
        procs.append(champion)
        champion.wait()
        # Every `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir when it starts, so
        # the Bento whose /metrics a test reads (the challenger, with the middleware) starts last.
        challenger = BentoProcess("challenger", challenger_tag, work, bento_env)
        procs.append(challenger)
        thirdparty.wait()
        challenger.wait()
        yield Bentos(champion, challenger, thirdparty, champion_build, champion_build["features"])
    finally:
        if champion_cli.poll() is None:
            champion_cli.kill()
            champion_cli.communicate()
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitorProcess]:
    """A monitor shared by a module's tests (each test uses its own model name)."""
    work = tmp_path_factory.mktemp("monitor")
    with MonitorProcess(f"sqlite:///{work / 'driftloop.db'}", work) as process:
        yield process
