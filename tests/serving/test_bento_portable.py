"""A Bento from ``driftloop bento build`` runs outside our virtualenv: its declared requirements,
installed into a fresh venv the way BentoML's generated image installs them (``uv pip install
-r env/python/requirements.txt`` from ``env/python``), are enough to serve it and to capture.

Installing needs the package index (uv's cache makes repeated runs fast); there is no container
engine here, so ``bentoml containerize`` itself is not run: the venv stands in for the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.linear_model import LogisticRegression

from driftloop.serving.bento.requirements import model_requirements
from tests.procs import free_port, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    from tests.conftest import need

    need(found is not None, "uv is not installed (BentoML depends on it)")
    assert found is not None
    return found


@pytest.fixture
def iris(tmp_path: Path) -> tuple[Path, Path, LogisticRegression, pd.DataFrame]:
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    joblib.dump(model, tmp_path / "model.joblib")
    data.data.assign(species=data.target).to_parquet(tmp_path / "reference.parquet")
    return tmp_path / "model.joblib", tmp_path / "reference.parquet", model, data.data


def test_a_model_pickled_by_another_scikit_learn_is_pinned_to_that_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    state = model.__getstate__()
    monkeypatch.setattr(
        LogisticRegression, "__getstate__", lambda self: {**state, "_sklearn_version": "1.4.2"}
    )
    joblib.dump(model, tmp_path / "old.joblib")
    monkeypatch.undo()
    from driftloop.serving.bento.build import _load_model

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded, trained = _load_model(tmp_path / "old.joblib")
    assert trained == {"scikit-learn": "1.4.2"}
    pins = model_requirements(loaded, frame_input=False, trained=trained)
    assert "scikit-learn==1.4.2" in pins
    assert not any(p.startswith("pandas") for p in pins), "pandas only for DataFrame models"


def test_the_built_bento_serves_from_a_fresh_venv_with_only_its_declared_requirements(
    iris: tuple[Path, Path, LogisticRegression, pd.DataFrame], tmp_path: Path
) -> None:
    uv = _uv()
    model_path, reference, model, features = iris
    env = {
        **os.environ,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    built = subprocess.run(
        [sys.executable, "-m", "driftloop", "bento", "build", "--model", str(model_path),
         "--reference", str(reference), "--label-column", "species", "--name", "portable",
         "--capture", "--no-smoke"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    result = json.loads(built.stdout)
    assert "building the Bento: done" in built.stderr, "plain progress when not a terminal"
    bento = Path(result["bento_path"])
    declared = (bento / "env" / "python" / "requirements.txt").read_text().split()
    import numpy
    import sklearn

    for pin in (f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}",
                f"pandas=={pd.__version__}", f"joblib=={joblib.__version__}",
                "bentoml==1.4.39"):  # fmt: skip
        assert pin in declared, (pin, declared)
    assert any(r.startswith("./wheels/driftloop-") for r in declared), declared
    assert (bento / "env" / "python" / "wheels").is_dir(), "the image installs from env/python"

    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    installed = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "-r", "requirements.txt"],
        cwd=bento / "env" / "python", capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(venv / "bin" / "bentoml"), "serve", result["bento_tag"], "--host", "127.0.0.1",
         "--port", str(port)],
        env={**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "PYTHONPATH": ""},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=tmp_path,  # not the checkout: its driftloop/ folder would shadow the installed one
    )  # fmt: skip
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", 120, process)
        except RuntimeError as exc:
            log.flush()
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from exc
        rows = features.head(15).to_dict(orient="records")
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"inputs": rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert [a["prediction"] for a in answer.json()] == model.predict(features.head(15)).tolist()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            process.wait(30)
        log.close()
    served_by = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import driftloop, sklearn, sys; print(driftloop.__file__); print(sys.prefix)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert str(venv) in served_by, "the fresh venv has its own Driftloop, from the Bento's wheel"
