"""A real ``driftloop monitor`` process evaluates drift on its own schedule and exports it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.monitor.evaluation.test_component import _records, _reference
from tests.procs import MonitorProcess

pytestmark = pytest.mark.integration


def test_the_scheduled_job_feeds_metrics_over_http(database_url: str, tmp_path: Path) -> None:
    env = {"DRIFTLOOP_JOBS__INTERVAL_SECONDS": "1", "DRIFTLOOP_JOBS__ENABLED": "true"}
    with (
        MonitorProcess(database_url, tmp_path, env=env) as monitor,
        httpx.Client(base_url=monitor.url, timeout=30) as http,
    ):
        rng = np.random.default_rng(9)
        response = http.put(
            "/v1/models/churn/reference?prediction_column=prediction",
            content=_reference(rng),
            headers={"content-type": "application/vnd.apache.parquet"},
        )
        assert response.status_code == 200, response.text
        batch = {"batch_id": uuid.uuid4().hex, "records": _records(rng, 400, shift=1.0)}
        assert http.post("/v1/records", json=batch).status_code == 200
        wanted = (
            'driftloop_feature_drifted{feature="x",method="ks",model="churn",'
            'variant="champion",version="v1"} 1.0'
        )
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = http.get("/metrics").text
            if wanted in text:
                break
            time.sleep(0.5)
        assert wanted in text
        assert (
            'driftloop_drift_window_records{model="churn",variant="champion",version="v1"} 400.0'
            in text
        )
        assert http.get("/v1/models/churn").json()["drift"][0]["records"] == 400
