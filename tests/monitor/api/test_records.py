"""``POST /v1/records``: ingest, idempotency, limits; no ack for an uncommitted batch."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from driftloop.store import RecordRow


def make_record(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "request_id": f"req-{i}",
        "model": "iris",
        "version": "v1",
        "variant": "champion",
        "timestamp": datetime(2026, 5, 1, 12, 0, i % 60, tzinfo=UTC).isoformat(),
        "inputs": {"sepal_length": 5.1 + i % 7, "color": ["red", "blue"][i % 2]},
        "outputs": {"prediction": ["setosa", "virginica"][i % 2]},
        "latency_ms": 1.5,
        "status": 200,
    }
    record.update(overrides)
    return record


def batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"batch_id": uuid.uuid4().hex, "source": "test", "records": records}


def stored(client: TestClient) -> int:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        count: int = session.scalar(select(func.count()).select_from(RecordRow))
        return count


def test_a_batch_is_stored_and_the_model_registered_with_an_inferred_schema(
    client: TestClient,
) -> None:
    response = client.post("/v1/records", json=batch([make_record(i) for i in range(20)]))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "batch_id": response.json()["batch_id"],
        "received": 20,
        "stored": 20,
        "duplicates": 0,
        "conflicts": 0,
        "conflicting_request_ids": [],
    }
    model = client.get("/v1/models/iris").json()
    assert model["record_count"] == 20
    assert model["records_by_version"] == {"v1": {"champion": 20}}
    kinds = {f["name"]: f["kind"] for f in model["schema"]["features"]}
    assert kinds == {"sepal_length": "numerical", "color": "categorical"}
    assert sorted(model["schema"]["prediction"]["classes"]) == ["setosa", "virginica"]
    assert model["schema_source"] == "inferred"


def test_resending_a_batch_and_duplicates_inside_one_store_each_record_once(
    client: TestClient,
) -> None:
    records = [make_record(i) for i in range(10)]
    first = client.post("/v1/records", json=batch(records + records[:3]))
    assert first.json()["stored"] == 10
    assert first.json()["duplicates"] == 3
    again = client.post("/v1/records", json=batch(records))
    assert again.json() == {**again.json(), "stored": 0, "duplicates": 10}
    shadow = client.post("/v1/records", json=batch([make_record(0, variant="shadow")]))
    assert shadow.json()["stored"] == 1, "a shadow copy shares the request id, not the variant"
    assert stored(client) == 11


def test_gzip_bodies_are_accepted(client: TestClient) -> None:
    body = gzip.compress(json.dumps(batch([make_record(i) for i in range(5)])).encode())
    response = client.post(
        "/v1/records",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 5


def test_stored_values_read_back_exactly_as_sent(client: TestClient) -> None:
    """The write paths format every column by hand (COPY text on PostgreSQL): what needs
    escaping or exact digits must come back as sent."""
    sent = [
        make_record(
            0,
            request_id="a\\b",
            version="v\\1",
            timestamp="1970-01-01T00:00:00Z",
            inputs={"path": "C:\\tmp\\x", "text": 'tab\tnew\nline "q" é ✓', "n": None},
            outputs={"prediction": "a\\b", "probabilities": [0.1, 0.2]},
            latency_ms=0.1 + 0.2,
        ),
        make_record(1, timestamp="2199-12-31T23:59:59.999999Z", latency_ms=86_400_000),
        make_record(2, timestamp="2026-05-01T17:30:00.000001+05:30", variant="shadow"),
    ]
    response = client.post("/v1/records", json=batch(sent))
    assert response.json()["stored"] == 3, response.text
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        rows = {r.request_id: r for r in session.scalars(select(RecordRow))}
    for record in sent:
        row = rows[record["request_id"]]
        assert row.ts == datetime.fromisoformat(record["timestamp"])
        assert (row.version, row.variant) == (record["version"], record["variant"])
        assert (row.inputs, row.outputs) == (record["inputs"], record["outputs"])
        assert row.latency_ms == record["latency_ms"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"timestamp": "2026-05-01T12:00:00"}, "timestamp"),
        ({"variant": "canary"}, "variant"),
        ({"inputs": {"x": "a\u0000b"}}, "inputs"),
        ({"status": 999}, "status"),
        ({"model": "bad name!"}, "model"),
        ({"latency_ms": -1}, "latency_ms"),
    ],
    ids=["naive-timestamp", "unknown-variant", "nul-character", "status", "model-name", "latency"],
)
def test_a_bad_record_gets_a_422_naming_the_field_and_nothing_is_stored(
    client: TestClient, override: dict[str, Any], field: str
) -> None:
    records = [make_record(0), make_record(1, **override)]
    response = client.post("/v1/records", json=batch(records))
    assert response.status_code == 422
    assert f"records.1.{field}" in response.json()["detail"]
    assert stored(client) == 0


def test_bodies_and_batches_over_the_limits_get_a_413(client: TestClient) -> None:
    limits = client.app.state.driftloop.settings.ingest  # type: ignore[attr-defined]
    limits.max_records = 5
    response = client.post("/v1/records", json=batch([make_record(i) for i in range(6)]))
    assert response.status_code == 413
    assert "limit of 5" in response.json()["detail"]
    limits.max_decompressed_bytes = 1000
    bomb = gzip.compress(b" " * 10_000_000)
    response = client.post(
        "/v1/records",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 413
    limits.max_body_bytes = 100
    response = client.post("/v1/records", json=batch([make_record(0)]))
    assert response.status_code == 413
    assert stored(client) == 0


def test_a_failed_commit_gets_a_503_with_retry_after_and_leaves_no_rows(
    client: TestClient,
) -> None:
    state = client.app.state.driftloop  # type: ignore[attr-defined]

    def fail_after_insert(session: Any, model: Any, rows: list[Any]) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    state.ingest_hooks.append(fail_after_insert)
    response = client.post("/v1/records", json=batch([make_record(i) for i in range(10)]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    state.ingest_hooks.remove(fail_after_insert)
    assert stored(client) == 0
    retry = client.post("/v1/records", json=batch([make_record(i) for i in range(10)]))
    assert retry.json()["stored"] == 10


def test_ingest_is_counted_on_the_injected_registry(client: TestClient) -> None:
    client.post("/v1/records", json=batch([make_record(i) for i in range(4)]))
    client.post("/v1/records", json=batch([make_record(i) for i in range(4)]))
    registry = client.app.state.driftloop.registry  # type: ignore[attr-defined]
    labels = {"model": "iris", "variant": "champion"}
    assert (
        registry.get_sample_value("driftloop_ingest_records_total", {**labels, "outcome": "stored"})
        == 4
    )
    assert (
        registry.get_sample_value(
            "driftloop_ingest_records_total", {**labels, "outcome": "duplicate"}
        )
        == 4
    )
    text = client.get("/metrics").text
    assert "process_resident_memory_bytes" in text
    assert (
        'driftloop_http_requests_total{code="200",handler="/v1/records",method="POST"} 2.0' in text
    )
