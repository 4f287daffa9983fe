"""``POST /v1/cloudevents``: KServe's payload logger pointed at the monitor, no sidecar.

The headers are exactly those KServe's logger sends (``pkg/logger/worker.go`` and
``handler.go``: a binary-mode CloudEvent from sdk-go with ``Ce-Id`` from the inbound ``Ce-Id`` or
a fresh UUID, ``Ce-Type`` request/response, the extensions ``Ce-Inferenceservicename``,
``Ce-Namespace``, ``Ce-Component``, ``Ce-Endpoint``, ``Ce-Metadata``, ``Ce-Source``,
``Ce-Specversion``, ``Ce-Time``; the request's ``Content-Type`` on both halves; a response half
only for HTTP 200)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from driftloop.server import create_app
from driftloop.settings import Settings
from driftloop.store import CloudEventHalf, Model, RecordRow

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
V2_REQUEST = {
    "id": "body-id-not-used",
    "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",
                "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}],
}  # fmt: skip
V2_RESPONSE = {
    "model_name": "sklearn-iris",
    "id": "body-id-not-used",
    "outputs": [{"name": "output-0", "shape": [2], "datatype": "INT32", "data": [1, 1]}],
}
V1_REQUEST = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]}
V1_RESPONSE = {"predictions": [1, 1, 0]}


def kserve_headers(
    event_id: str,
    kind: str,
    *,
    service: str = "sklearn-iris",
    endpoint: str = "default",
    second: int = 0,
) -> dict[str, str]:
    """What sdk-go puts on the wire for KServe's logger (Go canonicalises header names)."""
    return {
        "Ce-Id": event_id,
        "Ce-Specversion": "1.0",
        "Ce-Source": "http://localhost:9081/",
        "Ce-Type": kind,
        "Ce-Time": f"2026-12-07T12:00:0{second}.123456789Z",
        "Ce-Inferenceservicename": service,
        "Ce-Namespace": "kserve-test",
        "Ce-Component": "predictor",
        "Ce-Endpoint": endpoint,
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }  # fmt: skip


def post(client: TestClient, event_id: str, kind: str, body: Any, **kw: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/cloudevents", content=json.dumps(body), headers=kserve_headers(event_id, kind, **kw)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def rows(client: TestClient, model: str) -> list[tuple[str, str, str, dict, dict, float]]:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        query = (
            select(RecordRow.request_id, RecordRow.variant, RecordRow.version, RecordRow.inputs,
                   RecordRow.outputs, RecordRow.latency_ms)
            .join(Model, Model.id == RecordRow.model_id)
            .where(Model.name == model)
            .order_by(RecordRow.request_id)
        )  # fmt: skip
        return [tuple(r) for r in session.execute(query).all()]  # type: ignore[misc]


def pending(client: TestClient) -> int:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CloudEventHalf)) or 0)


def test_an_oip_v2_pair_becomes_one_record_per_row_keyed_by_ce_id(client: TestClient) -> None:
    event_id = str(uuid.uuid4())
    assert post(client, event_id, REQUEST, V2_REQUEST)["result"] == "waiting"
    assert post(client, event_id, RESPONSE, V2_RESPONSE, second=1)["result"] == "paired"
    assert rows(client, "sklearn-iris") == [
        (f"{event_id}-0", "champion", "default",
         {"input-0_0": 6.8, "input-0_1": 2.8, "input-0_2": 4.8, "input-0_3": 1.4},
         {"prediction": 1}, 1000.0),
        (f"{event_id}-1", "champion", "default",
         {"input-0_0": 6.0, "input-0_1": 3.4, "input-0_2": 4.5, "input-0_3": 1.6},
         {"prediction": 1}, 1000.0),
    ]  # fmt: skip
    assert pending(client) == 0


def test_a_v1_pair_from_the_canary_is_the_challenger_whichever_half_comes_first(
    client: TestClient,
) -> None:
    assert post(client, "ev-1", RESPONSE, V1_RESPONSE, endpoint="canary")["result"] == "waiting"
    assert post(client, "ev-1", REQUEST, V1_REQUEST, endpoint="canary")["result"] == "paired"
    records = rows(client, "sklearn-iris")
    assert [(r[0], r[1], r[2], r[4]) for r in records] == [
        ("ev-1-0", "challenger", "canary", {"prediction": 1}),
        ("ev-1-1", "challenger", "canary", {"prediction": 1}),
        ("ev-1-2", "challenger", "canary", {"prediction": 0}),
    ]
    assert records[2][3] == {"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}


def test_a_half_waits_in_the_database_so_another_replica_pairs_it(
    client: TestClient, settings: Settings
) -> None:
    post(client, "ev-r", REQUEST, V2_REQUEST)
    other = create_app(settings)  # a second replica (or the same monitor after a restart)
    try:
        with TestClient(other) as replica:
            assert post(replica, "ev-r", RESPONSE, V2_RESPONSE)["result"] == "paired"
    finally:
        other.state.driftloop.engine.dispose()
    assert [r[0] for r in rows(client, "sklearn-iris")] == ["ev-r-0", "ev-r-1"]


def test_a_resent_half_is_a_duplicate_and_stores_nothing_twice(client: TestClient) -> None:
    post(client, "ev-d", REQUEST, V2_REQUEST)
    assert post(client, "ev-d", REQUEST, V2_REQUEST)["result"] == "duplicate"
    post(client, "ev-d", RESPONSE, V2_RESPONSE)
    post(client, "ev-d", REQUEST, V2_REQUEST)  # after pairing: waits again, harmless
    assert post(client, "ev-d", RESPONSE, V2_RESPONSE)["result"] == "paired"
    assert len(rows(client, "sklearn-iris")) == 2
    metrics = client.get("/metrics").text
    assert 'driftloop_cloudevents_total{result="duplicate"} 1.0' in metrics


def test_events_that_are_not_kserves_are_refused_naming_the_header(client: TestClient) -> None:
    headers = kserve_headers("ev-x", "com.example.other")
    answer = client.post("/v1/cloudevents", content=b"{}", headers=headers)
    assert answer.status_code == 422
    assert "ce-type" in answer.text
    del headers["Ce-Inferenceservicename"]
    headers["Ce-Type"] = REQUEST
    answer = client.post("/v1/cloudevents", content=b"{}", headers=headers)
    assert answer.status_code == 422
    assert "ce-inferenceservicename" in answer.text


def test_halves_that_never_meet_their_pair_are_pruned_and_counted(client: TestClient) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from driftloop.monitor.kserve import PAIR_SECONDS, prune

    post(client, "ev-lonely", REQUEST, V2_REQUEST)  # the model answered 500: no response half
    post(client, "ev-fresh", REQUEST, V2_REQUEST)
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    old = state.clock.now() - timedelta(seconds=PAIR_SECONDS + 1)
    with state.sessions.begin() as session:
        session.execute(
            update(CloudEventHalf)
            .where(CloudEventHalf.event_id == "ev-lonely")
            .values(received_at=old)
        )
    assert prune(state) == 1
    assert pending(client) == 1
    assert 'driftloop_cloudevents_total{result="unpaired"} 1.0' in client.get("/metrics").text


def test_waiting_halves_are_bounded_the_oldest_go_first(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.monitor import kserve

    for i in range(3):
        post(client, f"ev-{i}", REQUEST, V2_REQUEST)
    monkeypatch.setattr(kserve, "MAX_PENDING", 1)
    assert kserve.prune(client.app.state.driftloop) == 2  # type: ignore[attr-defined]
    assert post(client, "ev-2", RESPONSE, V2_RESPONSE)["result"] == "paired"
    assert post(client, "ev-0", RESPONSE, V2_RESPONSE)["result"] == "waiting"
