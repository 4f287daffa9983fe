"""The loop with a real MLflow: ``mlflow server`` (SQLite, loopback) and MLflow's own client.

The webhook is created through MLflow's API with a secret; a version registered with MLflow's
client reaches a real ``driftloop monitor`` as MLflow's signed delivery and starts a rollout;
labeled traffic (records as a sidecar ships them) drives it to a promotion; the ``champion``
alias and the evidence tags are read back with MLflow's client, and the lineage tags on the run
that trained the version. A retried delivery (the monitor's answer lost on the way back: the one
stand-in here, a proxy) is acted on once; a replayed or tampered delivery is refused.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from tests.feedback.integrations.mlflow_procs import (
    LossyProxy,
    MlflowAgent,
    MlflowServer,
    mlflow_python,
)
from tests.procs import MonitorProcess

# MLflow's server takes a minute to start on a loaded machine: one per module, more time.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

MODEL = "churn"
SECRET = secrets.token_urlsafe(32)
FAST = {
    "DRIFTLOOP_ROLLOUT__MIN_STEP_SAMPLES": "30",
    "DRIFTLOOP_ROLLOUT__MIN_STEP_SECONDS": "0",
    "DRIFTLOOP_ROLLOUT__MIN_COMPARE_SAMPLES": "30",
    "DRIFTLOOP_ROLLOUT__TUNING_SAMPLES": "200",
    "DRIFTLOOP_ROLLOUT__STEPS": "[0.5, 1.0]",
    "DRIFTLOOP_ROLLOUT__SRM_GRACE_SECONDS": "2",
    "DRIFTLOOP_ROLLOUT__EVALUATE_INTERVAL_SECONDS": "0.5",
}


class Loop:
    """MLflow, its client, the monitor behind the proxy, and the monitor's API."""

    def __init__(
        self, mlflow: MlflowServer, agent: MlflowAgent, monitor: MonitorProcess, proxy: LossyProxy
    ) -> None:
        self.mlflow, self.agent, self.monitor, self.proxy = mlflow, agent, monitor, proxy
        self.http = httpx.Client(base_url=monitor.url, timeout=30)

    def model(self, name: str, champion: str = "1") -> None:
        body = {
            "name": name,
            "schema": {
                "features": [{"name": "x", "kind": "numerical"}],
                "prediction": {"kind": "classification", "classes": [0, 1]},
            },
            "versions": [{"version": champion, "role": "champion", "url": "http://127.0.0.1:9/1"}],
        }
        response = self.http.post("/v1/models", json=body)
        assert response.status_code in (200, 201), response.text

    def deliveries(self, name: str) -> list[tuple[dict[str, str], bytes, int, int]]:
        return [d for d in self.proxy.seen if f'"name": "{name}"'.encode() in d[1]]

    def rollout(self, name: str = MODEL) -> dict[str, Any]:
        response = self.http.get(f"/v1/models/{name}/rollout")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def metric(self, outcome: str) -> float:
        text = self.http.get("/metrics").text
        for line in text.splitlines():
            if line.startswith(f'driftloop_mlflow_webhooks_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        return 0.0


def traffic(http: httpx.Client, rng: np.random.Generator, n: int, mode: str, weight: float) -> None:
    """``n`` labeled requests routed like ``mode``, as a sidecar records them: the champion
    (version 1) is right 60 % of the time, the challenger (version 2) 97 %."""
    records, labels = [], []
    now = datetime.now(UTC)
    for i in range(n):
        rid, label = uuid.uuid4().hex, int(rng.integers(0, 2))
        ts = (now + timedelta(milliseconds=i)).isoformat()
        arms = (
            [("1", "champion", 0.6), ("2", "shadow", 0.97)]
            if mode == "shadow"
            else (
                [("2", "challenger", 0.97)] if rng.random() < weight else [("1", "champion", 0.6)]
            )
        )
        for version, variant, accuracy in arms:
            answer = label if rng.random() < accuracy else 1 - label
            records.append(
                {
                    "request_id": rid,
                    "model": MODEL,
                    "version": version,
                    "variant": variant,
                    "timestamp": ts,
                    "inputs": {"x": 1.0},
                    "outputs": {"prediction": answer},
                    "latency_ms": 5.0,
                    "status": 200,
                }
            )
        labels.append({"request_id": rid, "label": label, "model": MODEL})
    response = http.post("/v1/records", json={"batch_id": uuid.uuid4().hex, "records": records})
    assert response.status_code == 200, response.text
    response = http.post("/v1/feedback", json=labels)
    assert response.status_code == 200, response.text


def eventually(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Poll ``check`` until it returns something truthy (no fixed sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    python = mlflow_python()
    work = tmp_path_factory.mktemp("mlflow")
    server = MlflowServer(python, work).start()
    agent = None
    try:
        agent = MlflowAgent(python, server)
        env = {
            **FAST,
            "DRIFTLOOP_MLFLOW__TRACKING_URI": server.url,
            "DRIFTLOOP_MLFLOW__WEBHOOK_SECRET": SECRET,
            "DRIFTLOOP_MLFLOW__URL_TEMPLATE": "http://models.internal/{name}/{version}",
            "DRIFTLOOP_MLFLOW__WRITEBACK_INTERVAL_SECONDS": "0.5",
        }
        database = f"sqlite:///{work / 'monitor.db'}"
        with MonitorProcess(database, work, env=env) as monitor:
            proxy = LossyProxy(monitor.url)
            try:
                hook = agent(
                    "create_webhook",
                    name="driftloop",
                    url=f"{proxy.url}/v1/integrations/mlflow",
                    events=["model_version.created"],
                    secret=SECRET,
                )
                assert hook["events"] == ["model_version.created"]
                loop = Loop(server, agent, monitor, proxy)
                yield loop
                loop.http.close()
            finally:
                proxy.close()
    finally:
        if agent is not None:
            agent.close()
        server.stop()


def test_a_version_registered_in_mlflow_is_rolled_out_promoted_and_the_verdict_written_back(
    loop: Loop,
) -> None:
    loop.model(MODEL, champion="1")
    agent = loop.agent
    # Version 1 is the champion already: the tag keeps Driftloop from registering it.
    first = agent("create_version", name=MODEL, run_id=None, tags={"driftloop.challenger": "false"})
    assert first["version"] == "1"
    eventually(lambda: loop.deliveries(MODEL), "MLflow delivered version 1")
    assert loop.deliveries(MODEL)[0][2:] == (200, 200)

    run = agent("train", experiment="churn-training", params={"C": "0.5"})
    second = agent("create_version", name=MODEL, run_id=run["run_id"], tags={})
    assert second["version"] == "2"
    delivered = eventually(lambda: loop.deliveries(MODEL)[1:], "MLflow delivered version 2")
    headers, body, monitor_status, _ = delivered[0]
    assert monitor_status == 200
    assert headers["x-mlflow-signature"].startswith("v1,")
    assert b'"entity": "model_version"' in body
    assert b'"action": "created"' in body

    started = loop.rollout()
    assert started["rollout"]["status"] == "active"
    assert (started["rollout"]["champion"], started["rollout"]["challenger"]) == ("1", "2")
    described = loop.http.get(f"/v1/models/{MODEL}").json()
    challenger = next(v for v in described["versions"] if v["version"] == "2")
    assert challenger["url"] == "http://models.internal/churn/2"

    # While it is in rollout, MLflow shows it under the challenger alias.
    eventually(lambda: agent("aliases", name=MODEL).get("challenger") == "2", "challenger alias")

    rng = np.random.default_rng(7)

    def promoted() -> bool:
        policy = loop.http.get(f"/v1/models/{MODEL}/routing").json()
        if policy["mode"] == "single":
            body = loop.rollout()
            assert body["rollout"]["status"] == "promoted", body["decisions"]
            return True
        traffic(loop.http, rng, 60, policy["mode"], policy["weight"])
        return False

    eventually(promoted, "the rollout promoted version 2", timeout=150)

    aliases = eventually(
        lambda: (found := agent("aliases", name=MODEL)).get("champion") == "2" and found,
        "MLflow's champion alias moved to version 2",
    )
    assert "challenger" not in aliases
    tags = agent("describe", name=MODEL, version="2")["tags"]
    assert tags["driftloop.verdict"] == "promoted"
    assert tags["driftloop.status"] == "champion"
    assert tags["driftloop.reason"].startswith("non_inferior")
    assert tags["driftloop.metric"] == "accuracy"
    assert float(tags["driftloop.difference"]) > 0
    lower, upper = (float(v) for v in tags["driftloop.interval"].strip("[]").split(","))
    assert lower < float(tags["driftloop.difference"]) < upper
    assert lower > -float(tags["driftloop.margin"])  # it cleared the non-inferiority margin
    samples = tags["driftloop.samples"]
    assert '"champion"' in samples
    assert '"challenger"' in samples
    assert tags["driftloop.compared_with"] == "1"

    # Lineage on the run that trained version 2.
    run_tags = agent("run_tags", run_id=run["run_id"])
    assert run_tags["driftloop.model"] == MODEL
    assert run_tags["driftloop.version"] == "2"

    assert loop.metric("registered") >= 1
    assert loop.metric("ignored") >= 1


def test_a_retried_delivery_is_acted_on_once_and_a_replayed_or_tampered_one_is_refused(
    loop: Loop,
) -> None:
    name = "retried"
    loop.model(name, champion="0")
    loop.proxy.lose_next = True  # the monitor commits, MLflow sees a 503 and retries
    created = loop.agent("create_version", name=name, run_id=None, tags={})
    assert created["version"] == "1"
    deliveries = eventually(
        lambda: len(loop.deliveries(name)) >= 2 and loop.deliveries(name), "MLflow's retry"
    )
    (first_headers, first_body, *first), (retry_headers, _, *retry) = deliveries[:2]
    assert first == [200, 503]
    assert retry_headers["x-mlflow-delivery-id"] == first_headers["x-mlflow-delivery-id"]
    assert retry == [409, 409]  # refused as already processed: MLflow stops retrying
    versions = loop.http.get(f"/v1/models/{name}").json()["versions"]
    assert [v["version"] for v in versions if v["role"] == "challenger"] == ["1"]
    rollouts = loop.rollout(name)
    assert rollouts["rollout"]["challenger"] == "1"
    assert [d["decision"] for d in rollouts["decisions"]] == ["start"]

    signed = {k: v for k, v in first_headers.items() if k.startswith("x-mlflow")}
    signed["content-type"] = first_headers["content-type"]
    url = f"{loop.monitor.url}/v1/integrations/mlflow"
    replayed = httpx.post(url, content=first_body, headers=signed)
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["outcome"] == "replayed"

    tampered = first_body.replace(b'"version": "1"', b'"version": "9"')
    refused = httpx.post(url, content=tampered, headers=signed)
    assert refused.status_code == 401, refused.text
    assert refused.json()["outcome"] == "bad_signature"
    assert loop.metric("replayed") >= 2
    assert loop.metric("bad_signature") >= 1


def test_mlflow_is_the_version_the_docs_name(loop: Loop) -> None:
    pinned = (Path(__file__).resolve().parents[3] / "scripts/mlflow-constraints.txt").read_text()
    assert f"mlflow=={loop.agent.version}" in pinned
    major, minor = (int(p) for p in loop.agent.version.split(".")[:2])
    assert (major, minor) >= (3, 3)  # registry webhooks first shipped in MLflow 3.3.0


def test_driftloop_mlflow_setup_creates_the_webhook_with_a_secret_mlflow_signs_with(
    loop: Loop,
) -> None:
    url = loop.monitor.url
    args = ["mlflow", "setup", "--tracking-uri", loop.mlflow.url, "--monitor-url", url,
            "--name", "driftloop-cli", "--event", "model_version_alias.created"]  # fmt: skip
    created = CliRunner().invoke(app, args, env={"DRIFTLOOP_MLFLOW__WEBHOOK_SECRET": SECRET})
    assert created.exit_code == 0, created.output
    assert "created" in created.output
    hooks = {h["name"]: h for h in loop.agent("webhooks")}
    hook = hooks["driftloop-cli"]
    assert hook["url"] == f"{url}/v1/integrations/mlflow"
    assert hook["events"] == ["model_version_alias.created"]
    # MLflow's own test delivery, signed with the secret the command gave it, is verified.
    tested = loop.agent("test_webhook", webhook_id=hook["webhook_id"])
    assert tested["success"], tested
    assert '"outcome":"ignored"' in tested["body"].replace(" ", "")

    again = CliRunner().invoke(app, args, env={"DRIFTLOOP_MLFLOW__WEBHOOK_SECRET": SECRET})
    assert again.exit_code == 0, again.output
    assert "updated" in again.output
    assert [h["name"] for h in loop.agent("webhooks")].count("driftloop-cli") == 1

    wrong = CliRunner().invoke(
        app, args, env={"DRIFTLOOP_MLFLOW__WEBHOOK_SECRET": "not-the-monitors-secret-000"}
    )
    assert wrong.exit_code == 0, wrong.output
    refused = loop.agent("test_webhook", webhook_id=hook["webhook_id"])
    assert (refused["success"], refused["status"]) == (False, 401)
