"""End to end with real processes: two Bentos behind the sidecar, labels fed back, the monitor's
job promoting a better challenger (the sidecar then sends it everything) and rolling back a worse
one (it then gets nothing); and ``driftloop compare`` on the same Bentos."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from driftloop.cli import app
from driftloop.store import RecordRow, make_engine
from tests.procs import MonitorProcess
from tests.serving.procs import BentoProcess, SidecarProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = Path(__file__).parent
MODEL = "iris-rollout"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
FAST: dict[str, Any] = {
    "min_step_samples": 20,
    "min_step_seconds": 1,
    "min_compare_samples": 20,
    "tuning_samples": 100,
    "steps": [0.5, 1.0],
    "srm_grace_seconds": 2,
    "max_latency_increase": 20.0,  # the loaded test machine's latencies are not the subject here
}


def iris() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.data.set_axis(FEATURES, axis=1)
    frame["species"] = data.target.map(dict(enumerate(data.target_names)))
    return frame


@pytest.fixture(scope="module")
def bentos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BentoProcess, BentoProcess]]:
    """A good (about 97 %) and a bad (about 67 %) iris classifier, served by ``bentoml serve``."""
    work = tmp_path_factory.mktemp("rollout-bentos")
    env = {"BENTOML_HOME": str(work / "home"), "BENTOML_DO_NOT_TRACK": "True"}
    procs = [
        BentoProcess(quality, "service:IrisRollout", work, {**env, "IRIS_QUALITY": quality},
                     str(HERE / "bento_iris"))
        for quality in ("good", "bad")
    ]  # fmt: skip
    try:
        for proc in procs:
            proc.wait(120)
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.stop()


class Driver:
    """Sends labeled iris traffic through the sidecar and reads the monitor."""

    def __init__(self, sidecar: SidecarProcess, monitor: MonitorProcess, database: str) -> None:
        self.sidecar = sidecar
        self.http = httpx.Client(base_url=monitor.url, timeout=30)
        self.data = iris()
        self.rng = np.random.default_rng(0)
        self.engine = make_engine(database)

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()

    def traffic(self, n: int, *, label: bool = True) -> None:
        labels = []
        with httpx.Client(timeout=30) as client:
            for i in self.rng.integers(0, len(self.data), n):
                row = self.data.iloc[int(i)]
                rid = uuid.uuid4().hex
                response = client.post(
                    f"{self.sidecar.url}/predict",
                    json={"inputs": [{f: float(row[f]) for f in FEATURES}]},
                    headers={"X-Request-ID": rid},
                )
                assert response.status_code == 200, response.text
                labels.append({"request_id": rid, "label": row["species"], "model": MODEL})
        if label:
            response = self.http.post("/v1/feedback", json=labels)
            assert response.status_code == 200, response.text

    def rollout(self) -> dict[str, Any]:
        response = self.http.get(f"/v1/models/{MODEL}/rollout")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def until(self, status: str, timeout: float = 150) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.traffic(25)
            body = self.rollout()
            if body["rollout"]["status"] == status:
                return body
            assert body["rollout"]["status"] in ("active", "paused"), body["decisions"]
            time.sleep(0.1)
        raise AssertionError(f"no {status} within {timeout} s: {self.rollout()['decisions']}")

    def routed(self) -> dict[str, Any]:
        policy = self.http.get(f"/v1/models/{MODEL}/routing").json()
        deadline = time.monotonic() + 30
        revision = "driftloop_sidecar_policy_revision"
        while self.sidecar.metric(revision, model=MODEL) != policy["revision"]:
            assert time.monotonic() < deadline, "the sidecar did not pick up the policy"
            time.sleep(0.2)
        return dict(policy)

    def records(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(RecordRow.version, func.count()).group_by(RecordRow.version)
            ).all()
        return {version: int(count) for version, count in rows}

    def settle(self, expected: int, timeout: float = 30) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while sum(self.records().values()) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.records()


def test_the_sidecar_follows_promotion_and_rollback(
    bentos: tuple[BentoProcess, BentoProcess], tmp_path: Path
) -> None:
    good, bad = bentos
    database = f"sqlite:///{tmp_path / 'monitor.db'}"
    env = {"DRIFTLOOP_ROLLOUT__EVALUATE_INTERVAL_SECONDS": "1"}
    with (
        MonitorProcess(database, tmp_path, env=env) as monitor,
        httpx.Client(base_url=monitor.url, timeout=30) as http,
    ):
        classes = ["setosa", "versicolor", "virginica"]
        schema = {
            "features": [{"name": f, "kind": "numerical"} for f in FEATURES],
            "prediction": {"kind": "classification", "classes": classes},
        }
        versions = [
            {"version": "v1", "role": "champion", "url": bad.url},
            {"version": "v2", "role": "challenger", "url": good.url},
        ]
        created = http.post(
            "/v1/models", json={"name": MODEL, "schema": schema, "versions": versions}
        )
        assert created.status_code == 201, created.text
        started = http.post(
            f"/v1/models/{MODEL}/rollout", json={"action": "start", "version": "v2", "config": FAST}
        )
        assert started.status_code == 200, started.text
        args = ["--model", MODEL, "--champion", bad.url, "--champion-version", "v1",
                "--challenger", good.url, "--challenger-version", "v2",
                "--monitor", monitor.url]  # fmt: skip
        with SidecarProcess("sidecar", args, tmp_path) as sidecar:
            driver = Driver(sidecar, monitor, database)
            try:
                run_both_rollouts(driver, http, bad)
            finally:
                driver.close()


def run_both_rollouts(driver: Driver, http: httpx.Client, bad: BentoProcess) -> None:
    """Promote v2 (good over bad), check the routing; roll back v3 (bad), check again."""
    assert driver.routed()["mode"] == "shadow"

    promoted = driver.until("promoted")
    assert [d["decision"] for d in promoted["decisions"]] == [
        "start",
        "advance",
        "advance",
        "promote",
    ]
    policy = driver.routed()
    assert (policy["mode"], policy["champion"]["version"]) == ("single", "v2")
    time.sleep(1.0)  # records of the last round are shipped
    before = driver.records()
    driver.traffic(40, label=False)
    after = driver.settle(sum(before.values()) + 40)
    assert after.get("v2", 0) - before.get("v2", 0) == 40
    assert after.get("v1", 0) == before.get("v1", 0)

    # A worse challenger (the bad Bento again, as v3) is rolled back.
    versions = [{"version": "v3", "role": "challenger", "url": bad.url}]
    assert http.post("/v1/models", json={"name": MODEL, "versions": versions}).status_code == 200
    started = http.post(
        f"/v1/models/{MODEL}/rollout",
        json={"action": "start", "version": "v3", "config": FAST},
    )
    assert started.status_code == 200, started.text
    rolled_back = driver.until("rolled_back")
    last = rolled_back["decisions"][-1]
    assert last["decision"] == "rollback"
    assert last["evidence"]["difference"]["running_upper"] < -0.01
    policy = driver.routed()
    assert (policy["mode"], policy["champion"]["version"], policy["challenger"]) == (
        "single",
        "v2",
        None,
    )
    time.sleep(1.0)
    before = driver.records()
    driver.traffic(40, label=False)
    after = driver.settle(sum(before.values()) + 40)
    assert after.get("v3", 0) == before.get("v3", 0)
    assert after.get("v2", 0) - before.get("v2", 0) == 40
    gate = http.get(f"/v1/models/{MODEL}/gate")
    assert gate.status_code == 412


def test_compare_scores_a_holdout_on_both_bentos(
    bentos: tuple[BentoProcess, BentoProcess], tmp_path: Path
) -> None:
    good, bad = bentos
    holdout = tmp_path / "holdout.parquet"
    iris().to_parquet(holdout)

    def compare(champion: str, challenger: str) -> Result:
        # In process (the command's imports are loaded already); the Bentos are real servers.
        return CliRunner().invoke(
            app,
            ["compare", "--champion", champion, "--challenger", challenger, "--data",
             str(holdout), "--label-column", "species", "--json"],
        )  # fmt: skip

    better = compare(bad.url, good.url)
    assert better.exit_code == 0, better.output
    result = json.loads(better.stdout)
    assert result["rows"] == 150
    assert result["verdict"] == "non_inferior"
    assert result["challenger"] > 0.9 > 0.7 > result["champion"]
    worse = compare(good.url, bad.url)
    assert worse.exit_code == 1
    assert '"verdict": "inferior"' in worse.stdout
