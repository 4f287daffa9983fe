"""Hardening of the monitor's HTTP surface (issue 20): one test per finding of the probe.

In-process (Starlette's test client) for the API's answers; ``test_hardening_process.py`` repeats
the findings that came from real processes against a real ``driftloop monitor``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from driftloop.server import create_app
from driftloop.settings import IngestSettings, JobSettings, Scope, Settings, WebhookSettings
from driftloop.store import Model, RecordRow, make_engine
from driftloop.store.errors import database_unavailable
from tests.monitor.api.test_records import batch, make_record

TOKENS = {
    "ingest-tok": [Scope.ingest],
    "feedback-tok": [Scope.feedback],
    "read-tok": [Scope.read],
    "admin-tok": [Scope.admin],
}


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test is marked :data:`BOTH_DATABASES` (PostgreSQL costs ~3 s a test)."""
    url: str = request.getfixturevalue(f"{request.param}_database_url")
    return url


BOTH_DATABASES = pytest.mark.parametrize(
    "database_url", ["sqlite", "pg"], indirect=True, ids=["sqlite", "postgresql"]
)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def small_caps(sqlite_database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """An open monitor on SQLite whose ingest may register 3 models and 2 versions per model."""
    settings = Settings(
        database_url=sqlite_database_url,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
        ingest=IngestSettings(max_models=3, max_versions_per_model=2, max_versions_per_batch=4),
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


@pytest.fixture
def secured(sqlite_database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A monitor with a token per scope."""
    settings = Settings(
        database_url=sqlite_database_url,
        tokens=TOKENS,
        jobs=JobSettings(enabled=False),
        snapshot_dir=str(tmp_path / "snapshots"),
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.driftloop.engine.dispose()


def count_models(client: TestClient) -> int:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Model)) or 0)


def sample(client: TestClient, name: str, labels: dict[str, str]) -> float:
    registry = client.app.state.driftloop.registry  # type: ignore[attr-defined]
    return registry.get_sample_value(name, labels) or 0.0


# 1. Bounded cardinality -------------------------------------------------------------------------


def test_ingest_registers_models_up_to_the_cap_then_answers_422_naming_it(
    small_caps: TestClient,
) -> None:
    client = small_caps
    for i in range(3):
        response = client.post("/v1/records", json=batch([make_record(i, model=f"m{i}")]))
        assert response.status_code == 200, response.text
    over = client.post("/v1/records", json=batch([make_record(9, model="m9")]))
    assert over.status_code == 422
    assert "max_models" in over.json()["detail"].lower()
    assert "at most 3 models" in over.json()["detail"]
    assert count_models(client) == 3
    assert sample(client, "driftloop_ingest_batches_total", {"result": "over_cap"}) == 1
    # Known models keep flowing; an admin registers more by hand.
    assert client.post("/v1/records", json=batch([make_record(5, model="m0")])).is_success
    assert client.post("/v1/models", json={"name": "m9"}).status_code == 201
    assert client.post("/v1/records", json=batch([make_record(9, model="m9")])).is_success


def test_ingest_registers_versions_up_to_the_per_model_cap(small_caps: TestClient) -> None:
    client = small_caps
    for i, version in enumerate(["v1", "v2"]):
        assert client.post("/v1/records", json=batch([make_record(i, version=version)])).is_success
    over = client.post("/v1/records", json=batch([make_record(7, version="v3")]))
    assert over.status_code == 422
    assert "max_versions_per_model" in over.json()["detail"].lower()
    registered = client.post(
        "/v1/models", json={"name": "iris", "versions": [{"version": "v3", "role": "challenger"}]}
    )
    assert registered.status_code == 200, registered.text
    assert client.post("/v1/records", json=batch([make_record(7, version="v3")])).is_success


def test_a_batch_over_the_versions_cap_gets_a_422_not_a_503(small_caps: TestClient) -> None:
    records = [make_record(i, version=f"v{i}") for i in range(5)]
    response = small_caps.post("/v1/records", json=batch(records))
    assert response.status_code == 422
    assert "max_versions_per_batch" in response.json()["detail"].lower()
    assert "Retry-After" not in response.headers


def test_a_batch_with_340_versions_is_stored_on_sqlite_when_the_cap_allows_it(
    client: TestClient, tmp_path: Path
) -> None:
    """The probe's batch exceeded SQLite's expression depth (profiles read back in one OR) and
    got 503 forever; now the read-back is chunked."""
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.settings.ingest.max_versions_per_batch = 400
    state.settings.ingest.max_versions_per_model = 400
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=500), "prediction": rng.choice(["a", "b"], 500)})
    put = client.put(
        "/v1/models/churn/reference?prediction_column=prediction",
        content=reference.to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert put.status_code == 200, put.text
    records = [
        make_record(
            i,
            model="churn",
            version=f"v{i}",
            inputs={"x": float(rng.normal())},
            outputs={"prediction": "a"},
        )
        for i in range(340)
    ]
    response = client.post("/v1/records", json=batch(records))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 340


# 6. Secrets never shown; the read scope -------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("ingest-tok", 403),
        ("feedback-tok", 403),
        ("read-tok", 200),
        ("admin-tok", 200),
    ],
    ids=["none", "ingest", "feedback", "read", "admin"],
)
def test_reads_of_configuration_need_the_read_scope_when_tokens_are_configured(
    secured: TestClient, token: str | None, status: int
) -> None:
    assert secured.post("/v1/models", json={"name": "iris"}, headers=bearer("admin-tok")).is_success
    headers = bearer(token) if token else {}
    for path in ("/v1/models", "/v1/models/iris/retraining", "/v1/models/iris/triggers", "/"):
        assert secured.get(path, headers=headers).status_code == status, path


def test_metrics_health_and_the_sidecars_polls_need_no_read_token(secured: TestClient) -> None:
    assert secured.post("/v1/models", json={"name": "iris"}, headers=bearer("admin-tok")).is_success
    for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
        assert secured.get(path).status_code == 200, path
    # A sidecar polls its model's schema and routing with its ingest token.
    assert secured.get("/v1/models/iris", headers=bearer("ingest-tok")).status_code == 200
    routing = secured.get("/v1/models/iris/routing", headers=bearer("ingest-tok"))
    assert routing.status_code in (200, 404), routing.text


def test_credentials_in_version_and_webhook_urls_are_never_shown(client: TestClient) -> None:
    leaky_version = "https://deploy:hunter2@bento.internal/predict?api_key=k-123"
    leaky_hook = "https://ci:hunter2@trainer.example/hook?token=t-456&team=ml"
    registered = client.post(
        "/v1/models",
        json={
            "name": "iris",
            "versions": [{"version": "v1", "role": "champion", "url": leaky_version}],
        },
    )
    assert registered.status_code == 201, registered.text
    put = client.put("/v1/models/iris/retraining", json={"webhook_url": leaky_hook})
    assert put.status_code == 200, put.text
    pages = [
        put.text,
        registered.text,
        client.get("/v1/models").text,
        client.get("/v1/models/iris").text,
        client.get("/v1/models/iris/retraining").text,
        client.get("/").text,
    ]
    for page in pages:
        assert "hunter2" not in page
        assert "k-123" not in page
        assert "t-456" not in page
    shown = client.get("/v1/models/iris/retraining").json()["webhook_url"]
    assert shown == "https://REDACTED@trainer.example/hook?token=REDACTED&team=ml"


# 4. Snapshot destinations; 5. webhook targets -------------------------------------------------


@pytest.mark.parametrize(
    "out",
    [
        "/etc/driftloop-snapshots",
        "../escape",
        "memory://driftloop-stolen",
        "simplecache::http://127.0.0.1:9/upload",
        "webhdfs://127.0.0.1:9/x",
        "ftp://127.0.0.1:9/x",
        "github://org:repo@/",
    ],
    ids=["absolute", "dotdot", "memory", "chain", "webhdfs", "ftp", "github"],
)
def test_a_snapshot_destination_outside_the_roots_gets_a_422_and_nothing_is_written(
    client: TestClient, tmp_path: Path, out: str
) -> None:
    assert client.post("/v1/models", json={"name": "iris"}).status_code == 201
    response = client.post("/v1/models/iris/datasets", json={"out": out})
    assert response.status_code == 422, response.text
    assert "not allowed" in response.json()["detail"] or "outside" in response.json()["detail"]
    assert not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/x"],
    ids=["link-local", "metadata-name"],
)
def test_webhook_urls_on_metadata_addresses_are_refused_unless_allowed(
    client: TestClient, settings: Settings, url: str
) -> None:
    assert client.post("/v1/models", json={"name": "iris"}).status_code == 201
    refused = client.put("/v1/models/iris/retraining", json={"webhook_url": url})
    assert refused.status_code == 422
    assert "ALLOW_PRIVATE_TARGETS" in refused.json()["detail"]
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.settings.webhooks = WebhookSettings(allow_private_targets=True)
    assert client.put("/v1/models/iris/retraining", json={"webhook_url": url}).status_code == 200


# 7. Open mode in a browser's reach ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/records", "text/plain"),
        ("/v1/records", "application/x-www-form-urlencoded"),
        ("/v1/feedback", "text/plain"),
        ("/v1/feedback", "multipart/form-data; boundary=x"),
        ("/v1/models", "text/plain"),
        ("/v1/models/iris/retrain", "text/plain"),
    ],
    ids=[
        "records-text",
        "records-form",
        "feedback-text",
        "feedback-multipart",
        "models",
        "retrain",
    ],
)
def test_writes_with_a_browser_form_content_type_get_415_and_store_nothing(
    client: TestClient, path: str, content_type: str
) -> None:
    body = json.dumps(batch([make_record(0)]) if path == "/v1/records" else {"name": "x"})
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert count_models(client) == 0


def test_file_uploads_keep_their_declared_types(client: TestClient) -> None:
    csv = "sepal_length,color,prediction\n5.1,red,setosa\n6.2,blue,virginica\n"
    put = client.put("/v1/models/iris/reference", content=csv, headers={"content-type": "text/csv"})
    assert put.status_code == 200, put.text
    wrong = client.put(
        "/v1/models/iris/reference", content=csv, headers={"content-type": "text/plain"}
    )
    assert wrong.status_code == 415


def test_the_open_api_answers_loopback_hosts_only(client: TestClient) -> None:
    assert client.get("/healthz", headers={"host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/healthz", headers={"host": "localhost"}).status_code == 200
    assert client.get("/healthz", headers={"host": "[::1]:8080"}).status_code == 200
    rebound = client.get("/v1/models", headers={"host": "attacker.example"})
    assert rebound.status_code == 421
    assert "DRIFTLOOP_ALLOWED_HOSTS" in rebound.json()["detail"]


def test_the_open_api_refuses_writes_from_a_foreign_origin_and_sends_no_cors(
    client: TestClient,
) -> None:
    body = batch([make_record(0)])
    foreign = client.post("/v1/records", json=body, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert stored_records(client) == 0
    local = client.post("/v1/records", json=body, headers={"origin": "http://localhost:3000"})
    assert local.status_code == 200, local.text
    preflight = client.options(
        "/v1/records",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert not any(h.lower().startswith("access-control-") for h in preflight.headers)


def stored_records(client: TestClient) -> int:
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    with state.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RecordRow)) or 0)


# 8. Errors that mean what they say ------------------------------------------------------------


def test_a_statement_sqlite_refuses_every_time_is_not_called_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    deep = " OR ".join(["1 = 1"] * 1200)
    with pytest.raises(OperationalError) as refused, engine.connect() as connection:
        connection.execute(text(f"SELECT {deep}"))
    assert not database_unavailable(refused.value)
    missing = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(OperationalError) as down, missing.connect():
        pass
    assert database_unavailable(down.value)
    engine.dispose()
    missing.dispose()


# 9. No unhandled 500s -------------------------------------------------------------------------


def test_a_bad_model_name_in_the_reference_path_gets_a_4xx(client: TestClient) -> None:
    response = client.put(
        "/v1/models/bad%20name/reference",
        content="a,b\n1,2\n",
        headers={"content-type": "text/csv"},
    )
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("path", ["/v1/records", "/v1/feedback"])
def test_json_nested_deeper_than_the_parser_allows_gets_a_4xx(
    client: TestClient, path: str
) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = (
        '{"batch_id": "b", "records": ['
        + json.dumps(make_record(0))[:-1]
        + ', "inputs": {"x": '
        + deep
        + "}}]}"
        if path == "/v1/records"
        else '[{"request_id": "r", "label": ' + deep + "}]"
    )
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


# 10. A reused request id with different inputs --------------------------------------------------


@BOTH_DATABASES
def test_a_reused_request_id_with_other_inputs_is_a_counted_and_reported_conflict(
    client: TestClient,
) -> None:
    first = client.post("/v1/records", json=batch([make_record(1)]))
    assert first.json()["stored"] == 1
    resent = client.post("/v1/records", json=batch([make_record(1)]))
    assert resent.json() | {"batch_id": ""} == {
        "batch_id": "",
        "received": 1,
        "stored": 0,
        "duplicates": 1,
        "conflicts": 0,
        "conflicting_request_ids": [],
    }
    other = make_record(1, inputs={"sepal_length": 99.0, "color": "green"})
    clash = client.post("/v1/records", json=batch([other, make_record(2)]))
    assert clash.status_code == 200, clash.text
    assert clash.json()["stored"] == 1
    assert clash.json()["conflicts"] == 1
    assert clash.json()["conflicting_request_ids"] == ["req-1"]
    in_batch = client.post(
        "/v1/records",
        json=batch([make_record(3), make_record(3, outputs={"prediction": "other"})]),
    )
    assert in_batch.json()["conflicts"] == 1
    labels = {"model": "iris", "variant": "champion"}
    assert sample(client, "driftloop_ingest_records_total", labels | {"outcome": "conflict"}) == 2
    assert sample(client, "driftloop_ingest_records_total", labels | {"outcome": "duplicate"}) == 1
    assert sample(client, "driftloop_ingest_records_total", labels | {"outcome": "stored"}) == 3


def test_a_model_without_labels_exports_no_empty_performance_series(client: TestClient) -> None:
    """The probe found ~45 series per model, mostly label-latency histograms of windows without
    a single label; now only windows and metrics with data have series."""
    assert client.post("/v1/records", json=batch([make_record(i) for i in range(5)])).is_success
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.jobs.run_job("feedback.performance", state)
    scrape = client.get("/metrics").text
    lines = [line for line in scrape.splitlines() if 'model="iris"' in line]
    assert lines, "the model is on the scrape"
    assert not [line for line in lines if line.startswith("driftloop_label_latency_seconds")]
    assert not [line for line in lines if line.startswith("driftloop_performance_samples")]
    assert len(lines) <= 8, lines


def test_the_performance_job_stops_at_its_budget_and_starts_with_the_oldest_next_run(
    client: TestClient,
) -> None:
    from driftloop.store import PerformanceResultRow

    for name in ("a", "b", "c"):
        assert client.post("/v1/records", json=batch([make_record(0, model=name)])).is_success
    state = client.app.state.driftloop  # type: ignore[attr-defined]
    state.settings.jobs.interval_seconds = 1e-9  # a budget any computation exceeds

    def computed() -> int:
        with state.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(PerformanceResultRow)) or 0)

    for run in (1, 2, 3):
        state.jobs.run_job("feedback.performance", state)
        assert computed() == run, "one model per run, never the same one twice"


def test_invented_http_methods_do_not_grow_the_metrics(client: TestClient) -> None:
    for i in range(3):
        client.request(f"PROPFIND{i}", "/v1/models")
    scrape = client.get("/metrics").text
    assert "PROPFIND" not in scrape
    assert 'method="other"' in scrape


def test_the_model_list_pages_by_name(client: TestClient) -> None:
    for name in ("c", "a", "b"):
        assert client.post("/v1/models", json={"name": name}).status_code == 201
    assert [m["name"] for m in client.get("/v1/models").json()] == ["a", "b", "c"]
    page = client.get("/v1/models", params={"limit": 2, "offset": 1}).json()
    assert [m["name"] for m in page] == ["b", "c"]
