"""The feedback component in a real ``driftloop monitor`` process on PostgreSQL: labels over HTTP,
the leader's job computing performance, Prometheus text on ``/metrics``, a snapshot on disk."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.feedback.support import CLASSES, record
from tests.procs import MonitorProcess

pytestmark = pytest.mark.integration


def accuracy_on(metrics_text: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "driftloop_performance_value":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (labels["metric"], labels["window"], labels["variant"]) == (
                "accuracy",
                "7d",
                "champion",
            ):
                return float(sample.value)
    return None


def test_labels_become_performance_metrics_in_a_running_monitor(
    pg_database_url: str, tmp_path: Path
) -> None:
    env = {"DRIFTLOOP_JOBS__INTERVAL_SECONDS": "1", "DRIFTLOOP_SNAPSHOT_DIR": str(tmp_path)}
    with (
        MonitorProcess(pg_database_url, tmp_path, env=env) as monitor,
        httpx.Client(base_url=monitor.url, timeout=30) as http,
    ):
        schema = {
            "features": [{"name": "size", "kind": "numerical"}],
            "prediction": {"kind": "classification", "classes": CLASSES},
        }
        assert http.post("/v1/models", json={"name": "pets", "schema": schema}).is_success
        now = time.time()
        records = [
            record(f"r{i}", "cat", at=datetime.fromtimestamp(now - 60 + i, UTC)) for i in range(20)
        ]
        batch = {"batch_id": uuid.uuid4().hex, "records": records}
        assert http.post("/v1/records", json=batch).is_success
        labels = [{"request_id": f"r{i}", "label": "cat" if i < 15 else "dog"} for i in range(20)]
        assert http.post("/v1/feedback", json=labels).json()["stored"] == 20
        deadline, accuracy = time.monotonic() + 30, None
        while accuracy is None and time.monotonic() < deadline:
            accuracy = accuracy_on(http.get("/metrics").text)
            time.sleep(0.5)
        assert accuracy == pytest.approx(15 / 20)
        detail = http.get("/v1/models/pets").json()
        assert detail["performance"]["windows"]["7d"]["versions"]["v1"]["champion"]["n"] == 20
        snapshot = http.post("/v1/models/pets/datasets", json={})
        assert snapshot.status_code == 201, snapshot.text
        assert Path(snapshot.json()["uri"].removeprefix("file://")).is_file()
